"""The cutover commands on a store alone: what they write and how they refuse."""

import asyncio
import json
import re

import pytest
from typer.testing import CliRunner

from bridge.cli import app
from bridge.core.store import ChangeSet, open_store
from bridge.core.view import DeviceView
from bridge.cutover.operator import wave_status


@pytest.fixture
def dsn(tmp_path):
    dsn = f"sqlite:///{tmp_path / 'bridge.db'}"

    async def seed():
        async with open_store(dsn) as store:
            for name in ("c-1", "c-2", "c-3"):
                await store.add_device(name)
            await store.save_changes(store_changes())
            typed = [DeviceView(n, thing_type="sensor") for n in ("c-2", "c-3")]
            await store.save_changes(ChangeSet(views=typed))

    asyncio.run(seed())
    return dsn


def store_changes():
    return ChangeSet(groups={"plant": None})


def cutover(dsn, *args):
    # Wide enough that rich never wraps a long temporary path inside a word.
    env = {"BRIDGE_STORE__DSN": dsn, "COLUMNS": "400"}
    return CliRunner().invoke(app, ["cutover", *args], env=env)


def test_plan_start_pause_resume_abort_and_status(dsn):
    assert cutover(dsn, "plan", "canary", "--devices", "c-1,c-2").exit_code == 0
    assert "wave canary: planned" in cutover(dsn, "status").output
    for step in ("start", "pause", "resume", "abort"):
        result = cutover(dsn, step, "canary")
        assert result.exit_code == 0, result.output
    assert "wave canary: aborting" in cutover(dsn, "status").output


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["start", "nope"], "no wave named 'nope': plan it first"),
        (["plan", "w", "--devices", "c-1,ghost"], "devices unknown to the bridge: ghost"),
        (["plan", "w", "--group", "plant"], "thing group 'plant' matches no device"),
        (["plan", "w", "--thing-type", "nope"], "thing type 'nope' matches no device"),
        (["plan", "w"], "give --devices, --group, --thing-type or --query"),
    ],
)
def test_mistakes_end_in_one_sentence_and_exit_2(dsn, args, says):
    result = cutover(dsn, *args)
    assert result.exit_code == 2
    assert says in result.output


def test_a_wave_cannot_be_planned_twice_or_resumed_when_done(dsn):
    assert cutover(dsn, "plan", "w", "--devices", "c-3").exit_code == 0
    again = cutover(dsn, "plan", "w", "--devices", "c-3")
    assert again.exit_code == 2
    assert "a wave named 'w' exists already" in again.output
    paused = cutover(dsn, "resume", "w")
    assert paused.exit_code == 2
    assert "wave 'w' is planned; it can become running only from paused" in paused.output


def _spec(dsn, wave):
    async def read():
        async with open_store(dsn) as store:
            return next(w for w in await wave_status(store) if w["name"] == wave)

    return asyncio.run(read())


def test_a_thing_type_selects_its_things_and_adds_to_a_list(dsn):
    result = cutover(dsn, "plan", "typed", "--thing-type", "sensor", "--devices", "c-1")
    assert result.exit_code == 0, result.output
    wave = _spec(dsn, "typed")
    assert [d["device_id"] for d in wave["devices"]] == ["c-1", "c-2", "c-3"]
    assert wave["spec"]["thing_type"] == "sensor"


def test_an_exponential_rollout_is_planned_with_its_ramp(dsn):
    result = cutover(
        dsn, "plan", "ramp", "--devices", "c-1,c-2,c-3",
        "--base-per-minute", "1", "--increment-factor", "2", "--increase-every", "1",
        "--max-per-minute", "2",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "rollout exponential from 1/min x2 up to 2/min, about 1 min to reach all" in (
        result.output
    )
    spec = _spec(dsn, "ramp")["spec"]
    assert (spec["base_per_minute"], spec["increment_factor"], spec["increase_every"]) == (1, 2, 1)


def test_a_wave_carries_the_ota_artifact_it_was_planned_with(dsn, tmp_path):
    artifact = {"url": "https://ota.example.com/a.tar.gz", "size": 10, "sha256": "a" * 64}
    good = tmp_path / "artifact.json"
    good.write_text(json.dumps(artifact))
    result = cutover(dsn, "plan", "fw", "--devices", "c-1", "--firmware", str(good))
    assert result.exit_code == 0, result.output
    assert _spec(dsn, "fw")["spec"]["firmware"] == artifact
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(artifact | {"sha256": "not-hex"}))
    result = cutover(dsn, "plan", "fx", "--devices", "c-1", "--firmware", str(bad))
    assert result.exit_code == 2
    said = " ".join(re.sub("[\u2500-\u257f]", " ", result.output).split())  # rich's box
    assert "bad.json is not an OTA artifact (sha256: String should match pattern" in said
