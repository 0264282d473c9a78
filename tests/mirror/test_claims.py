"""Claims on the outbox: renewed while a replica lives, free within a lease once it dies."""

import asyncio
import contextlib

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
