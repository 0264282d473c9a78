# Two entry points: `make test` and `make rehearse`. Both set up everything they need,
# system packages included, on a fresh Debian machine.
VENV ?= .venv
PY := $(VENV)/bin/python
ENV_FILE ?= .env.sim
THINGS ?= 300
PYTEST_ARGS ?=
# The suite runs on two workers (pytest-xdist): most tests wait on servers and child
# processes, so two at a time nearly halve the run on two cores. Tests of one module share
# a worker (--dist loadscope), so module fixtures start once. PYTEST_WORKERS=0: one process.
PYTEST_WORKERS ?= 2

.PHONY: all setup system venv azurite node-sdks checkov lint test rehearse image clean

all: test

system:
	@bash scripts/install-system-deps

# constraints.txt pins every package at a version the suite passed with, so a new release
# upstream cannot break a clean checkout (scripts/freeze-constraints refreshes it).
# The product and the stand-ins (sim/, a distribution of its own) go in side by side.
$(VENV)/.installed: pyproject.toml sim/pyproject.toml constraints.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]' -e ./sim
	touch $@

venv: $(VENV)/.installed

# Azurite (Azure Storage emulator) comes from npm, pinned by tools/azurite/package-lock.json.
tools/azurite/node_modules/.installed: tools/azurite/package-lock.json
	npm ci --prefix tools/azurite --no-audit --no-fund --loglevel=error
	touch $@

azurite: tools/azurite/node_modules/.installed

# Microsoft's Node device SDK, which the firmware tests run patched Node programs with,
# pinned by tools/node-sdks/package-lock.json.
tools/node-sdks/node_modules/.installed: tools/node-sdks/package-lock.json
	npm ci --prefix tools/node-sdks --no-audit --no-fund --loglevel=error
	touch $@

node-sdks: tools/node-sdks/node_modules/.installed

# checkov pins old boto3/packaging, so it gets a venv of its own; the Terraform tests find it.
.venv-checkov/.installed: constraints-checkov.txt
	python3 -m venv .venv-checkov
	.venv-checkov/bin/python -m pip install --quiet -c constraints-checkov.txt checkov==3.3.30
	touch $@

checkov: .venv-checkov/.installed

setup: system venv azurite node-sdks checkov

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports --no-cache

test: setup lint
	$(VENV)/bin/pytest -n $(PYTEST_WORKERS) --dist loadscope $(PYTEST_ARGS)

rehearse: setup
	$(VENV)/bin/iot-bridge rehearse --things $(THINGS) --env-file $(ENV_FILE)

# The product image, built and smoke-tested with podman from a debootstrap base (no registry
# needed). Not part of `test`: it needs root, the network and about five minutes.
image:
	bash scripts/build-image

clean:
	rm -rf $(VENV) .venv-checkov build .mypy_cache .pytest_cache .ruff_cache tools/azurite/node_modules tools/node-sdks/node_modules
