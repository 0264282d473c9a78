"""The layers in pyproject.toml's import-linter contracts hold, and a wrong import breaks them.

Each case copies the package, adds one import that crosses a line the design draws, and
runs `lint-imports` on the copy: the contract that names that line must fail.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(package_parent: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own venv's tool
        [str(LINT_IMPORTS), "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
        capture_output=True,
        text=True,
        check=False,
        cwd=package_parent,
        env={**os.environ, "PYTHONPATH": str(package_parent)},
        timeout=120,
    )


@pytest.fixture
def copy(tmp_path):
    shutil.copytree(
        ROOT / "bridge", tmp_path / "bridge", ignore=shutil.ignore_patterns("__pycache__")
    )
    return tmp_path


def test_the_product_keeps_every_contract():
    done = lint_imports(ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


@pytest.mark.parametrize(
    ("module", "wrong_import", "contract"),
    [
        ("core/view.py", "import bridge.aws.codec", "Layers, with the steps"),
        ("mirror/engine.py", "import bridge.plan.loader", "Layers, with the steps"),
        ("mapping/twin.py", "import bridge.azure.hub", "Layers, with the steps"),
        ("daemon/app.py", "import bridge_sim.estate", "never imports the stand-ins"),
        ("core/store/base.py", "import botocore", "import no cloud SDK"),
    ],
)
def test_a_wrong_import_breaks_its_contract(copy, module, wrong_import, contract):
    assert lint_imports(copy).returncode == 0  # the copy itself is clean
    path = copy / "bridge" / module
    path.write_text(path.read_text() + f"\n{wrong_import}  # deliberately wrong\n")
    done = lint_imports(copy)
    assert done.returncode != 0
    broken = [line for line in done.stdout.splitlines() if line.endswith("BROKEN")]
    assert any(contract in line for line in broken), done.stdout
    assert wrong_import.split()[-1] in done.stdout
