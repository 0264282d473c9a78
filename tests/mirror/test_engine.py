"""The engine end to end over the real store, with in-memory ports for source and target."""

import asyncio
import contextlib
from dataclasses import replace

import pytest

from bridge.core.events import (
    GroupChanged,
    MembershipChanged,
    PresenceChanged,
    ShadowChanged,
    ThingChanged,
)
from bridge.core.machine import Event, State
from bridge.core.ports import DeletePolicy
from bridge.core.view import DeviceView, ShadowView
from bridge.mirror.engine import Engine, EngineOptions
from tests.core.fakes import GatedTarget, MemoryReader, MemoryTarget, ScriptedSource


async def settle(engine, source=None, timeout=60):
    """Wait until the source's queue is handed over, then until the engine applied it all."""
    while source is not None and not source.queue.empty():
        await asyncio.sleep(0.01)
    await engine.settle(timeout)


@contextlib.asynccontextmanager
async def running(store, target, source=None, reader=None, **options):
    engine = Engine(
        store,
        target,
        source=source,
        reader=reader,
        options=EngineOptions(reconcile_every=None, **options),
    )
    task = asyncio.create_task(engine.run())
    try:
        yield engine
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_live_events_create_and_update_twins_and_are_acked_after_commit(store):
    target, source = MemoryTarget(), ScriptedSource()
    async with running(store, target, source) as engine:
        source.push(ThingChanged("d1", 1, thing_type="meter", attributes={"site": "a"}))
        source.push(ShadowChanged("d1", None, 1, desired={"rate": 5}))
        source.push(ShadowChanged("d1", "cfg", 1, desired={"mode": "eco"}))
        source.push(ThingChanged("d1", 2, thing_type="meter", attributes={"site": "b"}))
        source.push(PresenceChanged("d1", connected=True))
        await settle(engine, source)
        assert target.twins["d1"] == {
            "type": "meter",
            "attributes": {"site": "b"},
            "groups": [],
            "desired": {"": {"rate": 5}, "cfg": {"mode": "eco"}},
        }
        assert sorted(source.acked) == [0, 1, 2, 3, 4]
        assert (await store.get_device("d1")).state is State.MIRRORED
        lags = engine.mirror.stats.lags
        assert lags
        assert all(0 <= lag < 10 for lag in lags)


async def test_stale_and_duplicate_events_do_not_write_again(store):
    target, source = MemoryTarget(), ScriptedSource()
    async with running(store, target, source) as engine:
        source.push(ShadowChanged("d1", None, 3, desired={"v": 3}))
        await settle(engine, source)
        writes = target.writes
        source.push(ShadowChanged("d1", None, 3, desired={"v": 3}))
        source.push(ShadowChanged("d1", None, 2, desired={"v": 2}))
        await settle(engine, source)
        assert target.writes == writes
        assert target.twins["d1"]["desired"] == {"": {"v": 3}}
        assert engine.ingest.stats.stale == 2


async def test_malformed_messages_go_to_dead_letters_and_the_engine_keeps_going(store):
    target, source = MemoryTarget(), ScriptedSource()
    async with running(store, target, source) as engine:
        source.push(
            None,
            topic="$aws/things/x/shadow/update/documents",
            payload=b"\xff{",
            error="payload is not JSON",
        )
        source.push(ShadowChanged("d1", None, 1, desired={"ok": True}))
        await settle(engine, source)
        [letter] = await store.dead_letters(10)
        assert letter.reason == "payload is not JSON"
        assert letter.payload == {
            "topic": "$aws/things/x/shadow/update/documents",
            "payload_base64": "/3s=",
        }
        assert target.twins["d1"]["desired"] == {"": {"ok": True}}
        assert sorted(source.acked) == [0, 1]


async def test_group_moves_reach_every_member_of_every_subgroup(store):
    target, source = MemoryTarget(), ScriptedSource()
    async with running(store, target, source) as engine:
        for group, parent in (("USA", None), ("New York", "USA"), ("Site 1", "New York")):
            source.push(GroupChanged(group, parent=parent))
        source.push(MembershipChanged("d1", "Site 1", added=True, at_ms=1))
        source.push(MembershipChanged("d2", "New York", added=True, at_ms=1))
        await settle(engine, source)
        assert target.twins["d1"]["groups"] == ["USA/New York/Site 1"]
        source.push(GroupChanged("Americas"))
        source.push(GroupChanged("USA", parent="Americas"))
        await settle(engine, source)
        assert target.twins["d1"]["groups"] == ["Americas/USA/New York/Site 1"]
        assert target.twins["d2"]["groups"] == ["Americas/USA/New York"]
        source.push(GroupChanged("Site 1", deleted=True))
        await settle(engine, source)
        assert target.twins["d1"]["groups"] == []


@pytest.mark.parametrize("policy", list(DeletePolicy))
async def test_deletes_follow_the_policy_and_a_new_thing_with_the_name_comes_back(store, policy):
    target, source = MemoryTarget(), ScriptedSource()
    async with running(store, target, source, delete_policy=policy) as engine:
        source.push(ThingChanged("d1", 1))
        await settle(engine, source)
        source.push(ThingChanged("d1", 2, deleted=True))
        await settle(engine, source)
        assert target.removed == {"d1": policy}
        assert (await store.get_device("d1")).state is State.DELETED
        source.push(ThingChanged("d1", 1, attributes={"again": "yes"}))
        await settle(engine, source)
        assert target.twins["d1"]["attributes"] == {"again": "yes"}
        assert (await store.get_device("d1")).state is State.MIRRORED


async def test_transient_target_failures_are_retried_until_everything_lands(store):
    target, source = MemoryTarget(fail_share=0.4, seed=7), ScriptedSource()
    async with running(store, target, source, retry_base=0.01) as engine:
        for i in range(30):
            source.push(ShadowChanged(f"d{i}", None, 1, desired={"i": i}))
        await settle(engine, source, timeout=90)
        assert {d: t["desired"][""]["i"] for d, t in target.twins.items()} == {
            f"d{i}": i for i in range(30)
        }
        assert engine.mirror.stats.retries > 0


async def test_a_rejected_device_fails_with_its_reason_and_others_continue(store):
    target, source = MemoryTarget(reject={"big"}), ScriptedSource()
    async with running(store, target, source) as engine:
        source.push(ShadowChanged("big", None, 1, desired={"blob": "x"}))
        source.push(ShadowChanged("small", None, 1, desired={"ok": 1}))
        await settle(engine, source)
        [problem] = await store.problems(10)
        assert (problem.device_id, problem.state) == ("big", State.FAILED)
        assert "32768" in problem.reason
        assert "small" in target.twins
        assert [d.source for d in await store.dead_letters(10)] == ["azure"]


async def test_seed_then_live_events_during_it_leave_no_gap(store):
    target, source = MemoryTarget(), ScriptedSource()
    old = {
        f"d{i}": DeviceView(f"d{i}", thing_version=1, shadows={"": ShadowView(1, {"v": 1})})
        for i in range(50)
    }
    async with running(store, target, source) as engine:
        # A live update newer than the read arrives before the read is folded in.
        source.push(ShadowChanged("d7", None, 2, desired={"v": 2}))
        await engine.seed(old.values(), {"root": None})
        await settle(engine, source)
        assert len(target.twins) == 50
        assert target.twins["d7"]["desired"] == {"": {"v": 2}}
        assert await engine.seeded()


async def test_anti_entropy_repairs_missed_events_and_hand_edited_twins(store):
    views = {
        f"d{i}": DeviceView(f"d{i}", thing_version=1, attributes={"i": str(i)}) for i in range(10)
    }
    reader = MemoryReader(views, {"g": None})
    target = MemoryTarget()
    async with running(store, target, reader=reader) as engine:
        await engine.seed(views.values(), reader.parents)
        await settle(engine)
        # Missed events: d1 changed and d2 deleted on the source; d3 edited by hand on Azure.
        reader.views["d1"] = DeviceView("d1", thing_version=2, attributes={"i": "changed"})
        del reader.views["d2"]
        target.twins["d3"]["attributes"] = {"i": "tampered"}
        report = await engine.reconcile()
        await settle(engine)
        assert (report.source_drift, report.vanished, report.target_drift) == (2, 1, 1)
        assert target.twins["d1"]["attributes"] == {"i": "changed"}
        assert "d2" not in target.twins
        assert target.twins["d3"]["attributes"] == {"i": "3"}
        again = await engine.reconcile()
        assert (again.source_drift, again.vanished, again.target_drift) == (0, 0, 0)


async def test_anti_entropy_counts_every_device_the_target_lacks_even_if_never_written(store):
    # As after a kill -9 during the initial sync: the read is folded in and every create is
    # queued, none written (the target holds them). The pass must say the hub lacks them.
    views = {f"m{i}": DeviceView(f"m{i}", thing_version=1) for i in range(10)}
    reader, target = MemoryReader(views, {}), GatedTarget()
    target.twins["m0"] = {"written": "by a run that died before it recorded the write"}
    async with running(store, target, reader=reader, import_threshold=None) as engine:
        await engine.seed(views.values(), {})
        report = await engine.reconcile()
        assert (report.target_missing, report.target_missing_unwritten) == (9, 9)
        assert engine.target_drift == 0  # queued work is not drift
        target.gate.set()
        await settle(engine)
        assert set(target.twins) == set(views)
        again = await engine.reconcile()
        assert (again.target_missing, again.target_drift) == (0, 0)


async def test_a_large_initial_sync_goes_through_one_import_job_and_writes_nothing_twice(store):
    target = MemoryTarget(reject={"d3"})
    views = [DeviceView(f"d{i}", thing_version=1, attributes={"i": str(i)}) for i in range(40)]
    async with running(store, target, import_threshold=10) as engine:
        await engine.seed(views, {})
        await settle(engine)
        assert target.imports == 1
        assert target.writes == 0  # the workers found every imported twin current
        assert len(target.twins) == 39
        counts = await store.counts_by_state()
        assert (counts[State.MIRRORED], counts[State.FAILED]) == (39, 1)


async def test_a_repeated_initial_sync_removes_things_deleted_while_no_one_listened(store):
    # A first run read five things and was killed before its sync was recorded as done;
    # two were deleted while no session was there to hear it (a broker restart loses it).
    views = {f"v{i}": DeviceView(f"v{i}", thing_version=1) for i in range(5)}
    reader, target = MemoryReader(dict(views), {}), MemoryTarget()
    async with running(store, target, reader=reader) as engine:
        await engine.seed(views.values(), {})
        await settle(engine)
        assert set(target.twins) == set(views)
        del reader.views["v3"], reader.views["v4"]
        await engine.seed(reader.snapshot(), {})  # the next start reads the estate again
        await settle(engine)
    assert set(target.twins) == {"v0", "v1", "v2"}


class _ListedBefore(MemoryReader):
    """A reader whose full read lists the estate as it was before the last changes (as a
    pass does while events keep coming); single reads see AWS as it is now."""

    def __init__(self, listed, now):
        super().__init__(now, {})
        self.listed = listed

    async def snapshot(self):
        for view in self.listed.values():
            yield view


async def test_a_pass_reading_before_events_folded_meanwhile_undoes_none_of_them(store):
    # What the fault test caught: anti-entropy listed a thing and its shadows, then the thing
    # was deleted and another got its first named shadow, and those events were folded
    # before the read was. The read brought the deleted thing back on Azure, and dropped
    # the new shadow from the twin for good (no later event would restore it).
    listed = {
        "gone": DeviceView("gone", thing_version=2, attributes={"a": "1"}),
        "cfg": DeviceView("cfg", thing_version=1, shadows={"": ShadowView(3, {"x": 3})}),
    }
    now = {
        "cfg": replace(
            listed["cfg"], shadows={**listed["cfg"].shadows, "config": ShadowView(1, {"rate": 5})}
        )
    }
    reader, target, source = _ListedBefore(listed, now), MemoryTarget(), ScriptedSource()
    async with running(store, target, source, reader=reader) as engine:
        await engine.seed(listed.values(), {})
        await settle(engine, source)
        source.push(ThingChanged("gone", 2, deleted=True))
        source.push(ShadowChanged("cfg", "config", 1, desired={"rate": 5}))
        await settle(engine, source)
        assert "gone" not in target.twins
        report = await engine.reconcile()
        await settle(engine, source)
        assert "gone" not in target.twins
        assert target.twins["cfg"]["desired"] == {"": {"x": 3}, "config": {"rate": 5}}
        assert report.reread == 2  # each settled by reading the device again
        again = await engine.reconcile()
        await settle(engine, source)
        assert "gone" not in target.twins
        assert target.twins["cfg"]["desired"]["config"] == {"rate": 5}
        assert again.target_drift == 0


async def test_a_finalized_device_keeps_its_twin_whatever_changes_on_aws(store):
    target, source = MemoryTarget(), ScriptedSource()
    async with running(store, target, source) as engine:
        source.push(ShadowChanged("fin", None, 1, desired={"v": 1}))
        await settle(engine, source)
        assert target.twins["fin"]["desired"] == {"": {"v": 1}}
        for event in (Event.SCHEDULE_CUTOVER, Event.JOB_SENT, Event.AZURE_CONNECTED):
            await store.transition("fin", event)
        await store.transition("fin", Event.FINALIZE)
        writes = target.writes
        source.push(ShadowChanged("fin", None, 2, desired={"v": 2}))
        await settle(engine, source)
        assert target.twins["fin"]["desired"] == {"": {"v": 1}}
        assert target.writes == writes
        assert (await store.get_device("fin")).state is State.FINALIZED
