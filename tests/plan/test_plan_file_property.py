"""The migration plan reader under truncated, foreign and mutated files: a plan or one error."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from bridge.errors import ConfigError, PlanFileError
from bridge.inventory.models import Inventory
from bridge.mapping.models import MigrationPlan, PlanOptions
from bridge.mapping.plan_file import load_plan, parse_plan, plan_auth
from bridge.plan import build_plan, write_plan
from bridge.plan.planner import PLAN_FILE
from tests.plan.test_loader_property import BASE, _paths, json_values

PLAN = build_plan(Inventory.model_validate(BASE), PlanOptions()).plan
PLAN_TEXT = PLAN.model_dump_json(indent=2)
PLAN_DOCUMENT = json.loads(PLAN_TEXT)
PATHS = _paths(PLAN_DOCUMENT)


def _parses_or_refused(text: str) -> MigrationPlan | None:
    try:
        return parse_plan(text, source="plan.json")
    except PlanFileError as exc:
        message = str(exc)
    assert message.startswith("plan.json")
    return None


def test_a_written_plan_reads_back(tmp_path: Path) -> None:
    write_plan(build_plan(Inventory.model_validate(BASE), PlanOptions()), tmp_path)
    assert load_plan(tmp_path / PLAN_FILE) == PLAN
    assert set(plan_auth(PLAN)) == {"ok"}
    assert issubclass(PlanFileError, ConfigError)


@given(st.integers(0, len(PLAN_TEXT) - 1))
def test_a_truncated_plan_is_refused(cut: int) -> None:
    assert _parses_or_refused(PLAN_TEXT[:cut]) is None


@example('{"schema_version": "1.0", "devices": ' + "[" * 10_000 + "]" * 10_000 + "}")
@example('{"schema_version": "2.0"}')
@example("[]")
@given(json_values.map(json.dumps) | st.text(max_size=40))
def test_foreign_documents_are_refused(text: str) -> None:
    _parses_or_refused(text)


@st.composite
def mutated(draw: st.DrawFn) -> dict[str, Any]:
    document = copy.deepcopy(PLAN_DOCUMENT)
    path = draw(st.sampled_from(PATHS))
    parent: Any = document
    for part in path[:-1]:
        parent = parent[part]
    parent[path[-1]] = draw(json_values)
    return document


@given(mutated())
def test_a_mutated_plan_is_read_or_refused(document: dict[str, Any]) -> None:
    plan = _parses_or_refused(json.dumps(document))
    if plan is not None:
        plan_auth(plan)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"\xff\xfe{}", "not UTF-8"),
        (b"", "not valid JSON"),
        (b'{"schema_version": "1.0"}', "does not match the migration plan schema"),
    ],
)
def test_unreadable_files_name_the_file(tmp_path: Path, raw: bytes, message: str) -> None:
    path = tmp_path / "migration-plan.json"
    path.write_bytes(raw)
    with pytest.raises(PlanFileError, match=message) as caught:
        load_plan(path)
    assert str(path) in str(caught.value)
    with pytest.raises(PlanFileError, match="cannot read plan"):
        load_plan(tmp_path / "missing.json")
