"""A change coalesced into a queued SYNC must not be lost to a claim taken meanwhile.

`save_changes` writes a device's new view and queues a SYNC only when no unclaimed one is
waiting: the waiting one "reads the newest view when it runs". On PostgreSQL (READ
COMMITTED, writers in parallel) a worker could claim that waiting SYNC after the check but
before the change committed, read the old view, write it and delete the SYNC: the new view
was then never written (issue 10: a live-created thing left on Azure without its
attributes). SQLite serializes writers (BEGIN IMMEDIATE), so the window exists only on
PostgreSQL, which is where this test runs.

The commit is held open deterministically: a second connection locks a thing group's row
that the change also writes, after its enqueue and before its commit.
"""

import asyncio

import asyncpg
import pytest

from bridge.core.store import ChangeSet, open_store
from bridge.core.view import DeviceView


def _view(attributes):
    return DeviceView("d1", thing_version=len(attributes), attributes=attributes)


def _split(store_dsn):
    """The server's DSN, and the test's own schema (the fixture's `search_path`)."""
    base, _, query = store_dsn.partition("?")
    options = dict(part.split("=", 1) for part in query.split("&") if part)
    schema = options.pop("search_path")
    rest = "&".join(f"{key}={value}" for key, value in options.items())
    return (f"{base}?{rest}" if rest else base), schema


async def _waiting_on_a_lock(dsn):
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
            " AND query LIKE '%thing_groups%' AND datname = current_database()"
        )
    finally:
        await conn.close()


@pytest.mark.parametrize("store_dsn", ["postgresql"], indirect=True)
async def test_a_change_coalesced_while_its_sync_is_claimed_is_still_written(store_dsn):
    dsn, schema = _split(store_dsn)
    async with open_store(store_dsn) as store:
        old, new = _view({}), _view({"born": "live"})
        await store.save_changes(ChangeSet(views=[old], sync={"d1"}, groups={"g": None}))
        blocker = await asyncpg.connect(dsn, server_settings={"search_path": schema})
        try:
            hold = blocker.transaction()
            await hold.start()
            await blocker.execute("SELECT * FROM thing_groups WHERE name = 'g' FOR UPDATE")
            change = asyncio.create_task(
                store.save_changes(ChangeSet(views=[new], sync={"d1"}, groups={"g": None}))
            )
            async with asyncio.timeout(30):  # the change is past its enqueue, not committed
                while not await _waiting_on_a_lock(dsn):
                    await asyncio.sleep(0.02)
            # A worker looks for work now, and writes what the view says at that moment.
            claimed = await store.claim("worker", 10, 30)
            written = [(i, (await store.get_views(["d1"]))["d1"]) for i in claimed]
            await hold.rollback()
        finally:
            await blocker.close()
        await change
        for item, _view_written in written:
            await store.finish(item, [], fingerprint="fp")
        # Whatever the worker wrote, the newest view must still be queued or written.
        while claimed := await store.claim("worker", 10, 30):
            written += [(i, (await store.get_views(["d1"]))["d1"]) for i in claimed]
            for item in claimed:
                await store.finish(item, [], fingerprint="fp")
        assert written, "nothing was ever claimed for the device"
        assert written[-1][1] == new, f"the last write was {written[-1][1]}, not the new view"
