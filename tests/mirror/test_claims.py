"""Claims on the outbox: renewed while a replica lives, free within a lease once it dies."""

import asyncio
import contextlib
import signal
import sqlite3
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import asyncpg

from bridge.core.store import open_store
from bridge.core.view import DeviceView, ShadowView
from bridge.mirror.engine import Engine, EngineOptions
from tests.core.fakes import GatedTarget, MemoryTarget

LEASE = 1.0
DEVICES = [f"c{i}" for i in range(4)]


def engine(store, target, owner, lease=LEASE, **options):
    return Engine(
        store,
        target,
        options=EngineOptions(
            owner=owner, reconcile_every=None, lease_seconds=lease, import_threshold=None, **options
        ),
    )


def views():
    return [DeviceView(d, thing_version=1, shadows={"": ShadowView(1, {"v": 1})}) for d in DEVICES]


async def until(condition, timeout):
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def running(engine):
    task = asyncio.create_task(engine.run())
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_a_live_replica_keeps_its_claims_past_the_lease_and_a_dead_ones_are_taken_over(
    store,
):
    slow, other = GatedTarget(), MemoryTarget()
    holder = engine(store, slow, "replica-a", drain_seconds=0)
    async with running(holder) as holder_task:
        await holder.seed(views(), {})
        await until(lambda: slow.waiting == set(DEVICES), 30)
        async with running(engine(store, other, "replica-b")):
            # Three leases on, the live holder's renewed claims are still its own.
            await asyncio.sleep(3 * LEASE)
            assert other.twins == {}
            # The holder dies without a word (no drain): its claims lapse within a lease.
            holder_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await holder_task
            died = asyncio.get_running_loop().time()
            await until(lambda: set(other.twins) == set(DEVICES), 30)
            assert asyncio.get_running_loop().time() - died < LEASE + 3
    assert await store.outbox_size() == 0


async def test_a_restarted_replica_takes_its_own_claims_back_at_once(store):
    # A long lease: without taking its claims back, the restart would wait it out.
    slow = GatedTarget()
    first = engine(store, slow, "replica-a", lease=600, drain_seconds=0)
    async with running(first) as task:
        await first.seed(views(), {})
        await until(lambda: slow.waiting == set(DEVICES), 30)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    target = MemoryTarget()
    again = engine(store, target, "replica-a", lease=600)
    restarted = asyncio.get_running_loop().time()
    async with running(again):
        await until(lambda: set(target.twins) == set(DEVICES), 30)
    assert asyncio.get_running_loop().time() - restarted < 5


class HangsOnce(MemoryTarget):
    """The first write of each device never returns, as a wedged SDK call would."""

    def __init__(self):
        super().__init__()
        self.hung = set()

    async def apply(self, view, group_paths, *, create, previous=None):
        if view.device_id not in self.hung:
            self.hung.add(view.device_id)
            await asyncio.Event().wait()
        return await super().apply(view, group_paths, create=create, previous=previous)


async def test_a_write_that_never_returns_is_cancelled_and_retried(store):
    target = HangsOnce()
    hanging = engine(store, target, "replica-a", write_timeout=0.5, retry_base=0.05)
    async with running(hanging):
        await hanging.seed(views(), {})
        await until(lambda: set(target.twins) == set(DEVICES), 30)
    assert target.hung == set(DEVICES)


async def _live_claims(dsn, owner):
    """Outbox rows `owner` holds a claim on that has not expired, read from the store."""
    if dsn.startswith("sqlite:///"):
        with sqlite3.connect(dsn.removeprefix("sqlite:///")) as db:
            query = "SELECT COUNT(*) FROM outbox WHERE claimed_by = ? AND claimed_until > ?"
            return db.execute(query, (owner, time.time())).fetchone()[0]
    parts = urlsplit(dsn)
    schema = parse_qs(parts.query)["search_path"][0]
    conn = await asyncpg.connect(
        parts._replace(query="").geturl(), server_settings={"search_path": schema}
    )
    try:
        query = "SELECT COUNT(*) FROM outbox WHERE claimed_by = $1 AND claimed_until > now()"
        return await conn.fetchval(query, owner)
    finally:
        await conn.close()


async def test_across_processes_a_live_replica_keeps_its_claims_and_a_killed_ones_are_taken_over(
    store_dsn,
):
    from tests.mirror.claim_holder import OWNER  # noqa: PLC0415 - the child's own module

    holder = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.mirror.claim_holder",
        store_dsn,
        stdout=asyncio.subprocess.PIPE,
        cwd=Path(__file__).resolve().parents[2],
    )
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(60):  # its log lines come first
            while (line := await holder.stdout.readline()) != b"holding\n":
                assert line, "the holder exited before holding its claims"
        # Keep reading its log, so a full pipe never blocks it.
        drain = asyncio.create_task(holder.stdout.read())
        async with open_store(store_dsn) as store:
            other = MemoryTarget()
            async with running(engine(store, other, "replica-b")):
                # Three leases on, every claim is still the live process's, renewed.
                held_since = loop.time()
                while loop.time() - held_since < 3 * LEASE:
                    assert await _live_claims(store_dsn, OWNER) == len(DEVICES)
                    await asyncio.sleep(0.1)
                assert other.twins == {}
                holder.send_signal(signal.SIGKILL)  # dies without a word
                await holder.wait()
                await drain
                killed = loop.time()
                await until(lambda: set(other.twins) == set(DEVICES), 30)
                assert loop.time() - killed < LEASE + 3
            assert await store.outbox_size() == 0
    finally:
        if holder.returncode is None:
            holder.kill()
            await holder.wait()
