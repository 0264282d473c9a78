"""Fuzz the inventory loader and the planner behind it: any file plans or is a PlanError.

`iot-bridge plan` promises one sentence and exit code 3 for a file it cannot trust; an
inventory the loader accepts must then plan without any other exception.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from bridge.inventory.models import Certificate, Inventory, Shadow, Thing, TopicRule
from bridge.mapping.models import PlanOptions
from bridge.plan import PlanError, build_plan, load_inventory
from bridge.x509 import thumbprints
from bridge_sim.pki import self_signed

_FILE = Path(tempfile.mkdtemp(prefix="fuzz-inventory-")) / "inventory.json"


def test_one_input(data: bytes) -> None:
    _FILE.write_bytes(data)
    try:
        inventory = load_inventory(_FILE)
        build_plan(inventory, PlanOptions())
    except PlanError as exc:
        if str(_FILE) not in str(exc) and "inventory" not in str(exc):
            raise AssertionError(f"the error does not name the file: {exc}") from exc


def _seed() -> bytes:
    pem = self_signed("m1").cert_pem
    sha1, sha256 = thumbprints(pem)
    arn = "arn:aws:iot:us-east-1:1:cert/c1"
    inventory = Inventory.model_validate(
        {
            "generated_at": "2026-01-01T00:00:00Z",
            "region": "us-east-1",
            "account_id": "123456789012",
            "certificates": [
                Certificate(
                    certificate_id="c1",
                    arn=arn,
                    status="ACTIVE",
                    pem=pem,
                    sha1_thumbprint=sha1,
                    sha256_thumbprint=sha256,
                    things=["m1"],
                ).model_dump()
            ],
            "things": [
                Thing(
                    name="m1",
                    principals=[arn],
                    attributes={"site": "a"},
                    shadows=[Shadow(version=1, desired={"a": 1}, size_bytes=9)],
                ).model_dump(),
                {"name": "m2", "groups": ["g"]},
            ],
            "thing_groups": [{"name": "g", "path": ["g"]}],
            "rules": [
                TopicRule(
                    name="t", sql="SELECT * FROM 'a/+/b'", actions=[{"kinesis": {"k": "v"}}]
                ).model_dump()
            ],
        }
    )
    return inventory.model_dump_json(by_alias=True).encode()


SEEDS = (_seed(), b"{}", json.dumps({"schema_version": "1.0"}).encode())

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from fuzz._harness import fuzz

    fuzz("inventory_loader", test_one_input, SEEDS)
