"""Fuzz the migration plan reader behind `run --plan`: any file is a plan or a PlanFileError."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from bridge.inventory.models import Inventory
from bridge.mapping.models import PlanOptions
from bridge.mapping.plan_file import PlanFileError, load_plan, plan_auth
from bridge.plan import build_plan

_FILE = Path(tempfile.mkdtemp(prefix="fuzz-plan-")) / "migration-plan.json"


def test_one_input(data: bytes) -> None:
    _FILE.write_bytes(data)
    try:
        plan_auth(load_plan(_FILE))
    except PlanFileError as exc:
        if str(_FILE) not in str(exc):
            raise AssertionError(f"the error does not name the file: {exc}") from exc


def _seed() -> bytes:
    inventory = Inventory.model_validate(
        {
            "generated_at": "2026-01-01T00:00:00Z",
            "region": "us-east-1",
            "things": [{"name": "m1", "attributes": {"k": "v"}}, {"name": "m2"}],
            "rules": [{"name": "t", "sql": "SELECT * FROM 'a/+/b'"}],
        }
    )
    return build_plan(inventory, PlanOptions()).plan.model_dump_json(indent=2).encode()


SEEDS = (_seed(), b'{"schema_version": "1.0"}')

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from fuzz._harness import fuzz

    fuzz("plan_loader", test_one_input, SEEDS)
