"""The inventory loader under truncated, foreign and mutated files: an inventory or PlanError.

`iot-bridge plan` answers a file it cannot trust with one sentence and exit code 3; that
only holds if the loader raises nothing but `PlanError`, whatever the bytes. A file the
loader accepts must then plan without an unexpected exception.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from bridge.inventory.models import Certificate, Inventory, Shadow, Thing, TopicRule
from bridge.mapping.models import PlanOptions
from bridge.plan import PlanError, build_plan, load_inventory, parse_inventory
from bridge.x509 import thumbprints
from bridge_sim.pki import self_signed


def _base() -> dict[str, Any]:
    pem = self_signed("ok").cert_pem
    sha1, sha256 = thumbprints(pem)
    cert = Certificate(
        certificate_id="id-ok",
        arn="arn:aws:iot:us-east-1:1:cert/id-ok",
        status="ACTIVE",
        pem=pem,
        sha1_thumbprint=sha1,
        sha256_thumbprint=sha256,
        things=["ok"],
    )
    inventory = Inventory(
        certificates=[cert],
        generated_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        region="us-east-1",
        account_id="123456789012",
        things=[
            Thing(
                name="ok",
                principals=[cert.arn],
                attributes={"site": "a"},
                groups=["g"],
                shadows=[Shadow(version=1, desired={"a": 1}, size_bytes=9)],
            ),
            Thing(name="no-cert"),
        ],
        rules=[TopicRule(name="t", sql="SELECT * FROM 'fleet/+/data'", actions=[])],
    )
    return json.loads(inventory.model_dump_json(by_alias=True))


BASE = _base()
BASE_TEXT = json.dumps(BASE, indent=2)

scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=8,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*prefix, index))
    return found


PATHS = _paths(BASE)


@st.composite
def mutated(draw: st.DrawFn) -> dict[str, Any]:
    """The base inventory with a few values replaced by any JSON, or removed."""
    document = copy.deepcopy(BASE)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(PATHS))
        parent: Any = document
        try:
            for part in path[:-1]:
                parent = parent[part]
            if draw(st.booleans()) and isinstance(parent, dict):
                parent.pop(path[-1], None)
            else:
                parent[path[-1]] = draw(json_values)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation removed or replaced this path
    return document


def _loads_or_plan_error(text: str) -> Inventory | None:
    try:
        return parse_inventory(text, source="inv.json")
    except PlanError as exc:
        message = str(exc)
    assert message.startswith("inv.json")
    return None


@given(st.integers(0, len(BASE_TEXT) - 1))
def test_a_truncated_inventory_is_refused(cut: int) -> None:
    assert _loads_or_plan_error(BASE_TEXT[:cut]) is None


@example('{"schema_version": "1.0", "things": ' + "[" * 10_000 + "]" * 10_000 + "}")
@example('{"schema_version": "1.0", "region": ' + "9" * 5000 + "}")
@given(json_values.map(json.dumps) | st.text(max_size=40))
def test_foreign_documents_are_refused(text: str) -> None:
    _loads_or_plan_error(text)


@given(mutated())
def test_a_mutated_inventory_loads_and_plans_or_is_refused(document: dict[str, Any]) -> None:
    inventory = _loads_or_plan_error(json.dumps(document))
    if inventory is not None:
        with contextlib.suppress(PlanError):
            build_plan(inventory, PlanOptions())


# Found by this test: bytes that are not UTF-8 raised UnicodeDecodeError past the clear
# "cannot read" path.
@example(b"\xff\xfe{}")
@example(BASE_TEXT.encode("utf-16"))
@given(st.binary(max_size=40) | st.just(BASE_TEXT.encode()[:100]))
def test_any_file_is_loaded_or_refused(tmp_path_factory: Any, raw: bytes) -> None:
    path: Path = tmp_path_factory.mktemp("inv") / "inv.json"
    path.write_bytes(raw)
    try:
        load_inventory(path)
    except PlanError as exc:
        message = str(exc)
    else:
        return
    assert str(path) in message


def test_an_odd_region_is_blamed_on_the_inventory_not_on_an_option() -> None:
    # Found by fuzz/inventory_loader.py: region "us-ea|t-1" made the derived hub name
    # invalid, and the error blamed a hub name the operator never gave.
    document = copy.deepcopy(BASE) | {"region": "us-ea|t-1"}
    inventory = parse_inventory(json.dumps(document))
    with pytest.raises(PlanError, match=r"inventory's region 'us-ea\|t-1'.*--hub-name"):
        build_plan(inventory, PlanOptions())
    build_plan(inventory, PlanOptions(hub_name="my-hub"))
