import asyncio
import contextlib
import random
import sqlite3

import asyncpg
import pytest

from bridge.core.machine import Event, State
from bridge.core.store import OutboxEntry, VersionKind, open_store
from bridge.core.store.migrations import POSTGRES, SQLITE
from bridge.errors import InvalidTransition, StoreError


async def test_migrations_apply_once_and_reopening_is_a_no_op(store_dsn):
    async with open_store(store_dsn) as store:
        assert await store.schema_version() == SQLITE[-1].version == POSTGRES[-1].version
        await store.add_device("kept")
    async with open_store(store_dsn) as store:
        assert await store.schema_version() == SQLITE[-1].version
        assert await store.get_device("kept") is not None


async def _pretend_newer_bridge_migrated(dsn):
    version = SQLITE[-1].version + 1
    if dsn.startswith("sqlite"):
        with contextlib.closing(sqlite3.connect(dsn.removeprefix("sqlite:///"))) as db, db:
            db.execute("INSERT INTO schema_migrations VALUES (?, 'future', 'now')", (version,))
        return
    conn = await asyncpg.connect(dsn)
    await conn.execute("INSERT INTO schema_migrations VALUES ($1, 'future', 'now')", version)
    await conn.close()


async def test_a_database_newer_than_the_code_is_refused(store_dsn):
    async with open_store(store_dsn):
        pass
    await _pretend_newer_bridge_migrated(store_dsn)
    with pytest.raises(StoreError, match="newer than this bridge knows"):
        async with open_store(store_dsn):
            pass


async def test_unknown_scheme_is_refused():
    with pytest.raises(StoreError, match="unknown store DSN scheme 'mysql'"):
        async with open_store("mysql://localhost/db"):
            pass


async def test_add_and_get_device(store):
    assert await store.add_device("d1") is True
    assert await store.add_device("d1") is False
    device = await store.get_device("d1")
    assert (device.state, device.revision, device.shadow_versions) == (State.DISCOVERED, 0, {})
    assert await store.get_device("nope") is None


async def test_transition_persists_state_reason_and_revision(store):
    await store.add_device("d1")
    assert await store.transition("d1", Event.PROVISION) is State.PROVISIONING
    assert await store.transition("d1", Event.FAIL, reason="quota exceeded") is State.FAILED
    device = await store.get_device("d1")
    assert (device.state, device.reason, device.revision) == (State.FAILED, "quota exceeded", 2)
    assert await store.transition("d1", Event.RETRY) is State.DISCOVERED
    assert (await store.get_device("d1")).reason is None


async def test_invalid_transition_changes_nothing_and_enqueues_nothing(store):
    await store.add_device("d1")
    with pytest.raises(InvalidTransition) as caught:
        await store.transition("d1", Event.AZURE_CONNECTED, enqueue=[OutboxEntry("x", {})])
    assert caught.value.device_id == "d1"
    assert (await store.get_device("d1")).revision == 0
    assert await store.outbox_size() == 0
    with pytest.raises(StoreError, match="unknown device"):
        await store.transition("ghost", Event.PROVISION)


async def test_transition_and_enqueue_commit_together(store):
    await store.add_device("d1")
    entries = [OutboxEntry("create_identity", {"n": 1}), OutboxEntry("create_twin", {"n": 2})]
    await store.transition("d1", Event.PROVISION, enqueue=entries)
    items = []
    while batch := await store.claim("w", 10, 30):
        items += batch
        await store.ack([item.id for item in batch])
    assert [(i.kind, i.payload) for i in items] == [(e.kind, dict(e.payload)) for e in entries]


async def test_concurrent_self_loops_lose_no_update(store_dsn):
    async with open_store(store_dsn) as one, open_store(store_dsn) as two:
        await one.add_device("d1")
        for event in (Event.PROVISION, Event.PROVISIONED, Event.CHANGED):
            await one.transition("d1", event)
        writers = [random.choice((one, two)).transition("d1", Event.CHANGED) for _ in range(60)]
        assert set(await asyncio.gather(*writers)) == {State.SYNCING}
        assert (await one.get_device("d1")).revision == 3 + 60


async def test_concurrent_mixed_transitions_apply_in_some_serial_order(store_dsn):
    async with open_store(store_dsn) as one, open_store(store_dsn) as two:
        await one.add_device("d1")
        await one.transition("d1", Event.PROVISION)
        await one.transition("d1", Event.PROVISIONED)
        events = [Event.CHANGED, Event.SYNCED] * 30
        random.shuffle(events)
        results = await asyncio.gather(
            *(random.choice((one, two)).transition("d1", e) for e in events),
            return_exceptions=True,
        )
        failures = [r for r in results if isinstance(r, BaseException)]
        assert all(isinstance(f, InvalidTransition) for f in failures), failures
        applied = len(results) - len(failures)
        assert applied > 0
        device = await one.get_device("d1")
        # Every applied transition bumped the revision exactly once: none was overwritten.
        assert device.revision == 2 + applied
        assert device.state in {State.MIRRORED, State.SYNCING}


async def test_stale_and_duplicate_versions_are_dropped(store):
    await store.add_device("d1")
    record = store.record_versions
    assert await record("d1", VersionKind.THING, "", 3) is True
    assert await record("d1", VersionKind.THING, "", 3) is False
    assert await record("d1", VersionKind.THING, "", 2) is False
    assert await record("d1", VersionKind.SHADOW, "", 7) is True
    assert await record("d1", VersionKind.SHADOW, "config", 1) is True
    assert await record("d1", VersionKind.SHADOW, "config", 1) is False
    assert await record("d1", VersionKind.SHADOW, "", 6) is False
    assert await record("d1", VersionKind.TWIN, "", 4, etag='"AAA"') is True
    assert await record("d1", VersionKind.TWIN, "", 4, etag='"BBB"') is False
    device = await store.get_device("d1")
    assert device.thing_version == 3
    assert device.shadow_versions == {"": 7, "config": 1}
    assert (device.twin_version, device.twin_etag) == (4, '"AAA"')
    with pytest.raises(StoreError, match="unknown device"):
        await record("ghost", VersionKind.THING, "", 1)


async def test_concurrent_versions_keep_the_highest_and_accept_each_once(store_dsn):
    async with open_store(store_dsn) as one, open_store(store_dsn) as two:
        await one.add_device("d1")
        versions = [v for v in range(1, 41) for _ in range(2)]  # every event delivered twice
        random.shuffle(versions)
        results = await asyncio.gather(
            *(
                random.choice((one, two)).record_versions("d1", VersionKind.SHADOW, "s", v)
                for v in versions
            )
        )
        accepted = [v for v, ok in zip(versions, results, strict=True) if ok]
        assert len(accepted) == len(set(accepted))  # a duplicate is never accepted twice
        assert 40 in accepted
        assert (await one.get_device("d1")).shadow_versions == {"s": 40}


async def test_counts_listing_and_problems(store):
    for name in ("a", "b", "c", "d"):
        await store.add_device(name)
    await store.transition("a", Event.PROVISION)
    await store.transition("b", Event.FAIL, reason="bad certificate")
    for event in (Event.PROVISION, Event.PROVISIONED, Event.SCHEDULE_CUTOVER, Event.JOB_SENT):
        await store.transition("c", event)
    await store.transition("c", Event.CUTOVER_TIMED_OUT)
    counts = await store.counts_by_state()
    assert counts[State.DISCOVERED] == 1
    assert counts[State.PROVISIONING] == 1
    assert counts[State.FAILED] == 1
    assert counts[State.ROLLED_BACK] == 1
    assert counts[State.CUT_OVER] == 0
    assert [d.device_id for d in await store.devices_in_state(State.DISCOVERED, 10)] == ["d"]
    problems = {d.device_id: d.reason for d in await store.problems(10)}
    assert problems == {"b": "bad certificate", "c": "cutover_timed_out"}
    assert len(await store.problems(1)) == 1


async def test_sqlite_dsn_forms(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    async with open_store("sqlite:///relative.db") as store:
        await store.add_device("d1")
    assert (tmp_path / "relative.db").exists()
    with contextlib.closing(sqlite3.connect(tmp_path / "relative.db")) as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    with pytest.raises(StoreError, match="not a SQLite DSN"):
        async with open_store("sqlite:///"):
            pass


async def test_an_unreachable_database_is_a_store_error(tmp_path):
    with pytest.raises(StoreError, match="cannot open SQLite store"):
        async with open_store(f"sqlite:///{tmp_path}/missing/dir/store.db"):
            pass
    with pytest.raises(StoreError, match="cannot open PostgreSQL store"):
        async with open_store("postgresql://postgres@127.0.0.1:1/postgres"):
            pass
