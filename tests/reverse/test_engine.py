"""The reverse engine on a real store, with recording stand-ins for AWS (pure engine tests;
the end-to-end tests run the real clients)."""

import asyncio
import dataclasses
import json

import pytest

from bridge.azure.events import HubEvent
from bridge.core.machine import Event
from bridge.core.milestones import record_finalized
from bridge.core.store import open_store
from bridge.errors import Rejected
from bridge.metrics import Metrics
from bridge.reverse.engine import EngineOptions, ReverseEngine
from bridge.reverse.telemetry import TopicTemplates
from bridge.reverse.twins import TwinState, TwinSync

TO_MIRRORED = (Event.PROVISION, Event.PROVISIONED)
TO_CUTTING_OVER = (*TO_MIRRORED, Event.SCHEDULE_CUTOVER, Event.JOB_SENT)
TO_CUT_OVER = (*TO_CUTTING_OVER, Event.AZURE_CONNECTED)


class Aws:
    """Records what would reach AWS; refuses topics under `refused/`."""

    def __init__(self):
        self.published = []
        self.properties = []
        self.shadows = []

    async def publish(self, topic, payload, *, content_type=None, user_properties=None):  # noqa: ARG002
        if topic.startswith("refused/"):
            raise Rejected("not authorized")
        self.published.append((topic, json.loads(payload)))
        self.properties.append(dict(user_properties or {}))

    async def update(self, thing, shadow, section, state):
        self.shadows.append((thing, shadow, section, state))
        return len(self.shadows)


async def no_twin(_device_id):
    return TwinState({}, {}, {}, 0)


@pytest.fixture
async def store(tmp_path):
    async with open_store(f"sqlite:///{tmp_path / 'store.db'}") as opened:
        yield opened


async def device(store, device_id, events):
    await store.add_device(device_id)
    for event in events:
        await store.transition(device_id, event)


def engine(store, aws, metrics=None, state_ttl=0):
    return ReverseEngine(
        store,
        aws,
        TwinSync(store, aws, no_twin),
        templates=TopicTemplates("dt/{device}", {}),
        metrics=metrics or Metrics.create(),
        options=EngineOptions(state_ttl=state_ttl),
    )


def telemetry(device_id, seq, module_id=None, **properties):
    return HubEvent(
        "0",
        seq,
        0.0,
        "Telemetry",
        device_id,
        module_id,
        json.dumps({"seq": seq}).encode(),
        properties,
    )


def twin_change(device_id, seq, section, patch, version, *, op_type="updateTwin"):
    body = {"version": seq, "properties": {section: {**patch, "$version": version}}}
    return HubEvent(
        "0",
        seq,
        0.0,
        "twinChangeEvents",
        device_id,
        None,
        json.dumps(body).encode(),
        {"opType": op_type},
    )


async def test_only_a_cut_over_device_s_own_messages_go_back(store):
    await device(store, "moved", TO_CUT_OVER)
    await device(store, "stays", TO_MIRRORED)
    aws = Aws()
    metrics = Metrics.create()
    settled = await engine(store, aws, metrics).handle(
        "0",
        [
            telemetry("moved", 1),
            telemetry("moved", 2, module_id="aws-bridge"),  # the relay's: would loop
            telemetry("stays", 3),
            telemetry("moved", 4, awsTopic="tele/moved/x"),
            telemetry("unknown", 5),
        ],
    )
    assert settled
    assert aws.published == [("dt/moved", {"seq": 1}), ("tele/moved/x", {"seq": 4})]
    skipped = metrics.registry.get_sample_value(
        "bridge_reverse_messages_total", {"outcome": "skipped"}
    )
    assert skipped == 2  # stays, unknown (a module's message is not the device's at all)


async def test_a_finalized_device_s_messages_taken_before_the_finalizing_still_go_back(store):
    await device(store, "done", (*TO_CUT_OVER, Event.FINALIZE))
    await record_finalized(store, "done", 1000.0)
    await device(store, "never", (*TO_CUT_OVER, Event.FINALIZE))  # no moment recorded
    aws = Aws()

    def at(device_id, seq, enqueued):
        return dataclasses.replace(telemetry(device_id, seq), enqueued_at=enqueued)

    settled = await engine(store, aws).handle(
        "0", [at("done", 1, 999.5), at("done", 2, 1000.5), at("never", 3, 999.0)]
    )
    assert settled
    assert aws.published == [("dt/done", {"seq": 1})]  # in flight when it was finalized


async def test_a_device_that_moved_within_the_state_cache_s_ttl_is_not_skipped(store):
    # The rehearsal lost one reading this way: the engine had read the device's state just
    # before its job (MIRRORED, cached for a second), and the device was on Azure and
    # sending half a second later.
    await device(store, "quick", TO_MIRRORED)
    aws = Aws()
    reverse = engine(store, aws, state_ttl=3600)
    assert await reverse.handle("0", [telemetry("quick", 1, module_id="aws-bridge")])
    assert await reverse.handle("0", [twin_change("quick", 2, "reported", {"a": 1}, 2)])
    for event in TO_CUT_OVER[len(TO_MIRRORED) :]:
        await store.transition("quick", event)
    assert await reverse.handle("0", [telemetry("quick", 3)])
    assert aws.published == [("dt/quick", {"seq": 3})]


async def until_state_read(store, monkeypatch, times):
    """Wait until the engine has read device states `times` more times (so it is holding)."""
    reads = []
    get_devices = store.get_devices

    async def counting(device_ids):
        reads.extend(device_ids)
        return await get_devices(device_ids)

    monkeypatch.setattr(store, "get_devices", counting)
    async with asyncio.timeout(30):
        while len(reads) < times:
            await asyncio.sleep(0.01)


async def test_a_device_still_cutting_over_waits_for_the_verdict(store, monkeypatch):
    await device(store, "moving", TO_CUTTING_OVER)
    aws = Aws()
    reverse = engine(store, aws)
    events = [telemetry("moving", 1), telemetry("moving", 2)]
    batch = asyncio.create_task(reverse.handle("0", events))
    await until_state_read(store, monkeypatch, 2)  # looked again: still cutting over
    assert not batch.done()
    assert aws.published == []
    await store.transition("moving", Event.AZURE_CONNECTED)
    assert await asyncio.wait_for(batch, 30)
    assert aws.published == [("dt/moving", {"seq": 1}), ("dt/moving", {"seq": 2})]
    # Marked, so the relay (subscribed to the same topics) never carries them back.
    assert aws.properties == [{"iot-bridge-origin": "azure"}] * 2


async def test_a_device_sending_on_azure_before_its_job_is_recorded_is_carried(store):
    # The rehearsal lost a reading this way: the job goes out to a whole wave before the
    # store records it device by device, and a device switched and sent on Azure while its
    # state still said CUTOVER_PENDING. Not held either: a wave still waiting to send its
    # job has no verdict coming.
    await device(store, "quick", (*TO_MIRRORED, Event.SCHEDULE_CUTOVER))
    aws = Aws()
    assert await asyncio.wait_for(engine(store, aws).handle("0", [telemetry("quick", 1)]), 30)
    assert aws.published == [("dt/quick", {"seq": 1})]
    assert aws.properties == [{"iot-bridge-origin": "azure"}]  # the relay never carries it back


async def test_what_a_rolled_back_device_sent_on_azure_goes_back(store):
    # On Azure for a while, then back: AWS's consumers would never see what it sent there.
    # Its twin is the mirror's again, so twin changes do not go back.
    await device(store, "back", (*TO_CUTTING_OVER, Event.CUTOVER_TIMED_OUT))
    aws = Aws()
    reverse = engine(store, aws)
    assert await reverse.handle(
        "0", [telemetry("back", 1), twin_change("back", 2, "reported", {"a": 1}, 2)]
    )
    assert aws.published == [("dt/back", {"seq": 1})]
    assert aws.properties == [{"iot-bridge-origin": "azure"}]
    assert aws.shadows == []


async def test_a_stop_leaves_a_held_batch_unsettled(store, monkeypatch):
    await device(store, "moving", TO_CUTTING_OVER)
    reverse = engine(store, Aws())
    batch = asyncio.create_task(reverse.handle("0", [telemetry("moving", 1)]))
    await until_state_read(store, monkeypatch, 1)
    reverse.stop()
    assert await asyncio.wait_for(batch, 30) is False
    assert await reverse.handle("0", [telemetry("moving", 2)]) is False


async def test_messages_without_a_topic_or_refused_are_dead_lettered(store):
    await device(store, "moved", TO_CUT_OVER)
    aws = Aws()
    reverse = ReverseEngine(
        store,
        aws,
        TwinSync(store, aws, no_twin),
        templates=TopicTemplates(None, {}),
        metrics=Metrics.create(),
        options=EngineOptions(state_ttl=0),
    )
    assert await reverse.handle(
        "0", [telemetry("moved", 1), telemetry("moved", 2, awsTopic="refused/x")]
    )
    letters = sorted(letter.reason for letter in await store.dead_letters(10))
    assert letters == ["no_topic", "refused"]
    assert aws.published == []


def twin_at(reported, reported_version, desired_version):
    async def read(_device_id):
        return TwinState({}, {}, reported, reported_version, desired_version)

    return read


def engine_reading(store, aws, read_twin):
    return ReverseEngine(
        store,
        aws,
        TwinSync(store, aws, read_twin),
        templates=TopicTemplates(None, {}),
        metrics=Metrics.create(),
        options=EngineOptions(state_ttl=0),
    )


async def test_twin_changes_reach_shadows_once_and_the_mirror_s_replaces_never(store):
    await device(store, "moved", TO_CUT_OVER)
    aws = Aws()
    reverse = engine_reading(store, aws, twin_at({"t": 1, "shadows": {"cfg": {"m": "eco"}}}, 2, 6))
    reported = twin_change("moved", 1, "reported", {"t": 1, "shadows": {"cfg": {"m": "eco"}}}, 2)
    replaced = twin_change("moved", 2, "desired", {"fan": 9}, 5, op_type="replaceTwin")
    patched = twin_change("moved", 3, "desired", {"fan": 3}, 6)
    assert await reverse.handle("0", [reported, replaced, patched])
    assert await reverse.handle("0", [reported, patched])  # read again after a restart
    assert aws.shadows == [
        ("moved", None, "reported", {"t": 1}),
        ("moved", "cfg", "reported", {"m": "eco"}),
        ("moved", None, "desired", {"fan": 3}),
    ]


async def test_iot_hub_s_metadata_in_a_notification_never_reaches_a_shadow(store):
    # Real twinChangeEvents bodies carry `$metadata` beside `$version` in each section
    # (Microsoft's documented samples); the emulator's leave it out.
    await device(store, "moved", TO_CUT_OVER)
    aws = Aws()
    metadata = {"$lastUpdated": "2026-12-07T08:00:00Z", "$lastUpdatedVersion": 3}
    patch = {"t": 4, "shadows": {"cfg": {"m": "max"}}, "$metadata": {**metadata, "t": metadata}}
    reverse = engine_reading(store, aws, twin_at({}, 0, 0))
    assert await reverse.handle("0", [twin_change("moved", 1, "reported", patch, 3)])
    assert aws.shadows == [
        ("moved", None, "reported", {"t": 4}),
        ("moved", "cfg", "reported", {"m": "max"}),
    ]


async def test_a_device_created_again_on_azure_has_its_reports_carried_from_version_1(store):
    # IoT Hub's twin notifications carry no identity generation. A device deleted on Azure
    # and created again (by an operator, or by the mirror putting it back) counts its
    # versions from 1 again: those reports must not be taken for ones read again.
    await device(store, "moved", TO_CUT_OVER)
    aws = Aws()
    before = engine_reading(store, aws, twin_at({"t": 1}, 50, 1))
    assert await before.handle("0", [twin_change("moved", 1, "reported", {"t": 1}, 50)])
    after = engine_reading(store, aws, twin_at({"t": 2}, 2, 1))
    assert await after.handle("0", [twin_change("moved", 2, "reported", {"t": 2}, 2)])
    assert aws.shadows == [
        ("moved", None, "reported", {"t": 1}),
        ("moved", None, "reported", {"t": 2}),
    ]


async def test_a_report_read_again_is_skipped_after_a_look_at_the_twin(store):
    await device(store, "moved", TO_CUT_OVER)
    aws = Aws()
    reads = []

    async def twin(device_id):
        reads.append(device_id)
        return TwinState({}, {}, {"t": 3}, 7)

    reverse = engine_reading(store, aws, twin)
    first = twin_change("moved", 1, "reported", {"t": 3}, 7)
    assert await reverse.handle("0", [first])
    assert await reverse.handle("0", [first])  # at-least-once: the same notification again
    assert aws.shadows == [("moved", None, "reported", {"t": 3})]
    assert reads == ["moved", "moved"]  # the first report's whole section, then the check


async def test_the_first_report_carried_brings_the_whole_reported_section(store):
    await device(store, "moved", TO_CUT_OVER)
    aws = Aws()

    async def twin_now(_device_id):
        return TwinState({}, {}, {"since_before": 1, "t": 2}, 5)

    reverse = ReverseEngine(
        store,
        aws,
        TwinSync(store, aws, twin_now),
        templates=TopicTemplates(None, {}),
        metrics=Metrics.create(),
        options=EngineOptions(state_ttl=0),
    )
    first = twin_change("moved", 1, "reported", {"t": 1}, 4)
    older = twin_change("moved", 2, "reported", {"t": 2}, 5)  # in what was read already
    newer = twin_change("moved", 3, "reported", {"t": 3}, 6)
    assert await reverse.handle("0", [first, older, newer])
    assert aws.shadows == [
        ("moved", None, "reported", {"since_before": 1, "t": 2}),
        ("moved", None, "reported", {"t": 3}),
    ]
