# The product image: `iot-bridge` and its pinned dependencies, nothing else. The local
# stand-ins (moto glue, the IoT Hub emulator; their own distribution in sim/) stay out of the
# build context (.dockerignore), and the rehearsal stack builds them from deploy/sim/Dockerfile.
#
#   docker build -t iot-bridge .                # from python:3.11-slim-bookworm
#   scripts/build-image                         # without a registry: a debootstrap base
#
# BASE must be a Debian bookworm image with python3 (3.11+) and its venv module; tini is
# installed when the base lacks it. Both stages use the same BASE, so the virtualenv's
# interpreter links resolve in the final stage.
ARG BASE=python:3.11-slim-bookworm

FROM ${BASE} AS build
# Only for builds behind a TLS-inspecting proxy: a CA bundle that the builder mounts for
# the build (scripts/build-image does); it is not copied into any layer.
ARG PIP_CERT=
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
# python-qpid-proton (the relay's AMQP) has no wheel on PyPI: it compiles here, and needs
# OpenSSL's headers or it builds without TLS (the relay then refuses to start). None of
# this reaches the final stage.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev libssl-dev python3-dev \
    && rm -rf /var/lib/apt/lists/*
# A virtualenv is one directory to copy: pip, its caches and build leftovers stay here.
RUN python3 -m venv /opt/venv
WORKDIR /src
COPY pyproject.toml constraints.txt README.md ./
COPY bridge/ bridge/
# The same pins as `make test`; the product only (no dev or stand-in extras), not editable.
# pip goes last: the running bridge never installs anything.
RUN /opt/venv/bin/pip install --no-cache-dir -c constraints.txt . \
    && /opt/venv/bin/pip uninstall --yes pip

FROM ${BASE}
# Declared again: an ARG before the first FROM is visible only in FROM lines.
ARG BASE
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG TINI_VERSION=0.19.0-1+b3
LABEL org.opencontainers.image.title="iot-bridge" \
      org.opencontainers.image.description="Live-migration bridge from AWS IoT Core to Azure IoT Hub" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="${BASE}"

# tini as PID 1 forwards SIGTERM to the daemon (which drains its writes) and reaps children.
# The debootstrap base of scripts/build-image has it already and no network at this step.
RUN if ! command -v tini >/dev/null 2>&1; then \
        apt-get update \
        && apt-get install -y --no-install-recommends "tini=${TINI_VERSION}" \
        && rm -rf /var/lib/apt/lists/*; \
    fi \
    && groupadd --gid 10001 iot-bridge \
    && useradd --uid 10001 --gid iot-bridge --no-create-home --no-log-init \
        --home-dir /var/lib/iot-bridge --shell /usr/sbin/nologin iot-bridge \
    && install -d -o iot-bridge -g iot-bridge -m 0750 /var/lib/iot-bridge

COPY --from=build /opt/venv /opt/venv

# Bytecode was compiled at install time and the root filesystem may be read-only, so the
# interpreter must not try to write more. The store lives on the volume: the default DSN
# (sqlite:///iot-bridge.db) is relative to the working directory. It is not set here, since
# BRIDGE_STORE__DSN may come as a secret file (/run/secrets/BRIDGE_STORE__DSN), which the
# bridge refuses beside an environment variable. Nothing else is written outside /tmp.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    BRIDGE_HTTP__HOST=0.0.0.0
VOLUME ["/var/lib/iot-bridge"]
WORKDIR /var/lib/iot-bridge
# Numeric, so Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
USER 10001:10001
EXPOSE 9464

# No curl in the image: the interpreter that is there anyway asks /livez.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/livez' % os.environ.get('BRIDGE_HTTP__PORT', '9464'), timeout=4)"]

ENTRYPOINT ["tini", "--", "iot-bridge"]
CMD ["run"]
