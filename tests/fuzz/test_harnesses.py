"""Every atheris harness's target runs over its seeds without atheris, so none can rot."""

from __future__ import annotations

import importlib

import pytest

HARNESSES = (
    "aws_codec",
    "rules_sql",
    "inventory_loader",
    "plan_loader",
    "envfile",
    "sim_mqtt_codec",
    "sim_query",
    "sim_amqp_codec",
)


@pytest.mark.parametrize("name", HARNESSES)
def test_harness_accepts_its_seeds_and_junk(name: str) -> None:
    harness = importlib.import_module(f"fuzz.{name}")
    assert harness.SEEDS
    for seed in harness.SEEDS:
        harness.test_one_input(seed)
        for cut in (0, 1, len(seed) // 2, len(seed) - 1):
            harness.test_one_input(seed[:cut])
    for junk in (b"", b"\x00", b"\xff" * 8, b"{" * 3000, "é\r\n".encode()):
        harness.test_one_input(junk)


def test_every_harness_is_listed() -> None:
    from pathlib import Path  # noqa: PLC0415

    here = Path(__file__).resolve().parents[2] / "fuzz"
    found = {p.stem for p in here.glob("*.py") if not p.stem.startswith("_")}
    assert found == set(HARNESSES)
