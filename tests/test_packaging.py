"""The product installs alone: no stand-ins, no moto, and `iot-bridge run` still works.

This is what the container image installs, so the test installs it the same way, into a
fresh virtual environment, at the pinned versions.
"""

import json
import subprocess
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STANDIN_ONLY = {"moto", "azure-iot-hub", "pyopenssl", "aiomqtt", "iot-bridge-sim"}
PROBE = """
import json, sys
import bridge.cli, bridge.daemon.app, bridge.mirror.service, bridge.discover, bridge.plan
print(json.dumps(sorted(sys.modules)))
"""

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def product_only(tmp_path_factory):
    where = tmp_path_factory.mktemp("product-only")
    venv.EnvBuilder(with_pip=True).create(where)
    python = where / "bin" / "python"
    subprocess.run(  # noqa: S603 - pip from the venv just made
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "-c",
            str(ROOT / "constraints.txt"),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        timeout=540,
        cwd=where,
    )
    return where


def run(venv_dir, *args):
    return subprocess.run(  # noqa: S603 - tools of the venv under test
        [str(venv_dir / "bin" / args[0]), *args[1:]],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        cwd=venv_dir,
    )


def test_the_product_alone_runs_iot_bridge_run_help(product_only):
    done = run(product_only, "iot-bridge", "run", "--help")
    assert done.returncode == 0, done.stderr
    assert "Mirror every thing and shadow into IoT Hub" in done.stdout
    listing = run(product_only, "iot-bridge", "--help")
    assert "discover" in listing.stdout
    assert " sim " not in listing.stdout
    assert "rehearse" not in listing.stdout


def test_the_product_alone_has_none_of_the_standins_dependencies(product_only):
    done = run(product_only, "python", "-m", "pip", "list", "--format", "json")
    installed = {package["name"].lower() for package in json.loads(done.stdout)}
    assert "iot-bridge" in installed
    assert installed & STANDIN_ONLY == set()


def test_the_product_alone_imports_neither_moto_nor_the_standins(product_only):
    done = run(product_only, "python", "-c", PROBE)
    assert done.returncode == 0, done.stderr
    loaded = json.loads(done.stdout)
    assert "bridge.mirror.service" in loaded
    assert [name for name in loaded if name.startswith(("moto", "bridge_sim"))] == []
