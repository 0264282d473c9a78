"""Store throughput: outbox enqueue/claim/ack and transitions, against a plain-INSERT baseline.

Usage: python bench/store.py [ITEMS]. PostgreSQL comes from BRIDGE_BENCH_POSTGRES_DSN (an
admin DSN; a scratch database is created and dropped) or the local server on 5432.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import aiosqlite
import asyncpg  # type: ignore[import-untyped]

from bridge.core.machine import Event
from bridge.core.store import Store, open_store

ADMIN_DSN = os.environ.get(
    "BRIDGE_BENCH_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/postgres"
)
DEVICES = 100
CONCURRENCY = 16


async def timed(items: int, work: Callable[[], Awaitable[object]]) -> float:
    start = time.perf_counter()
    await work()
    return items / (time.perf_counter() - start)


async def sqlite_baseline(path: str, items: int, table: str) -> float:
    async with aiosqlite.connect(path, isolation_level=None) as db:
        await db.execute("PRAGMA journal_mode=WAL")
        await db.execute("PRAGMA synchronous=FULL")  # the same durability as the store
        await db.execute(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, payload TEXT)")

        async def insert_all() -> None:
            for n in range(items):
                await db.execute(f"INSERT INTO {table} (payload) VALUES (?)", (f'{{"n":{n}}}',))  # noqa: S608

        return await timed(items, insert_all)


async def postgres_baseline(dsn: str, items: int, table: str) -> float:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f"CREATE TABLE {table} (id bigserial PRIMARY KEY, payload jsonb)")

        async def insert_all() -> None:
            for n in range(items):
                await conn.execute(f"INSERT INTO {table} (payload) VALUES ($1)", f'{{"n":{n}}}')  # noqa: S608

        return await timed(items, insert_all)
    finally:
        await conn.close()


async def store_rates(store: Store, items: int) -> dict[str, float]:
    async def enqueue_all() -> None:
        for n in range(items):
            await store.enqueue(f"d{n % DEVICES}", "bench", {"n": n})

    async def enqueue_concurrently() -> None:
        async def lane(lane_no: int) -> None:
            for n in range(lane_no, items, CONCURRENCY):
                await store.enqueue(f"d{n % DEVICES}", "bench", {"n": n})

        await asyncio.gather(*(lane(k) for k in range(CONCURRENCY)))

    async def drain() -> None:
        while batch := await store.claim("bench", DEVICES, 60):
            await store.ack([item.id for item in batch])

    async def transition_all() -> None:
        for n in range(items):
            await store.transition(f"d{n % DEVICES}", Event.CHANGED)

    for n in range(DEVICES):
        device = f"d{n}"
        await store.add_device(device)
        for event in (Event.PROVISION, Event.PROVISIONED, Event.CHANGED):
            await store.transition(device, event)
    enqueue_rate = await timed(items, enqueue_all)
    drain_rate = await timed(items, drain)
    concurrent_rate = await timed(items, enqueue_concurrently)
    await drain()
    return {
        "enqueue": enqueue_rate,
        f"enqueue x{CONCURRENCY} tasks": concurrent_rate,
        "claim+ack": drain_rate,
        "enqueue+claim+ack": 1 / (1 / enqueue_rate + 1 / drain_rate),
        "transition": await timed(items, transition_all),
    }


@asynccontextmanager
async def scratch_postgres() -> AsyncIterator[str]:
    name = f"iot_bridge_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(ADMIN_DSN, timeout=5)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield f"{ADMIN_DSN.rpartition('/')[0]}/{name}"
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def report(backend: str, baseline: float, rates: dict[str, float]) -> None:
    print(f"{backend}: plain INSERT baseline {baseline:10.0f} items/s")
    for name, rate in rates.items():
        print(f"{backend}: {name:<22}{rate:10.0f} items/s ({rate / baseline:.2f}x baseline)")


async def main(items: int) -> None:
    print(f"{items} items over {DEVICES} devices; one transaction per operation")
    # fsync times drift on a shared disk: the baseline runs before and after, the best counts.
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "bench.db")
        before = await sqlite_baseline(path, items, "baseline_before")
        async with open_store(f"sqlite:///{path}") as store:
            rates = await store_rates(store, items)
        after = await sqlite_baseline(path, items, "baseline_after")
        report("sqlite", max(before, after), rates)
    try:
        async with scratch_postgres() as dsn:
            before = await postgres_baseline(dsn, items, "baseline_before")
            async with open_store(dsn) as store:
                rates = await store_rates(store, items)
            after = await postgres_baseline(dsn, items, "baseline_after")
            report("postgresql", max(before, after), rates)
    except (OSError, asyncpg.PostgresError) as exc:
        print(f"postgresql: not measured, no server at {ADMIN_DSN}: {exc}")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000))
