"""With S1 quotas on the emulator, the budget keeps the client at the quota and never over it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from bridge.azure import DeviceIdentity, IotHubService, Operation, Rate, RateBudget
from tests.azure.conftest import FAST_RETRY, control, rest_statuses

WORKERS = 32


async def completions(call: Callable[[int], Awaitable[object]], seconds: float) -> list[float]:
    """Run `call` from WORKERS tasks for `seconds`; when each call finished, from the start."""
    start = time.monotonic()
    done: list[float] = []

    async def worker(number: int) -> None:
        while time.monotonic() - start < seconds:
            await call(number)
            done.append(time.monotonic() - start)

    await asyncio.gather(*(worker(n) for n in range(WORKERS)))
    return done


def steady_rate(done: list[float], begin: float, end: float) -> float:
    """Calls per second finished in [begin, end): after the first burst, before the tail."""
    return sum(begin <= moment < end for moment in done) / (end - begin)


async def test_s1_twin_updates_reach_the_quota_without_a_429(env, hub, stats):
    control(hub, "PUT", "quotas", {"tier": "S1", "units": 1})
    async with IotHubService(
        env["IOTHUB_CONNECTION_STRING"],
        budget=RateBudget.for_tier("S1"),
        retry=FAST_RETRY,
        stats=stats,
        ca_bundle=env["IOTHUB_ROOT_CA"],
    ) as service:
        await service.bulk([DeviceIdentity(f"p-{n}") for n in range(WORKERS)])

        async def update(n: int) -> None:
            await service.update_twin(f"p-{n}", tags={"at": time.monotonic()})

        updates = await completions(update, 6.0)

    assert rest_statuses(hub, 429) == 0
    assert sum(stats.throttled.values()) == 0
    assert stats.requests[Operation.TWIN_UPDATE] == len(updates)
    # S1, one unit: 50 twin updates a second, measured after the first second's burst.
    assert 0.95 * 50 <= steady_rate(updates, 1.0, 6.0) <= 1.02 * 50


async def test_the_budget_alone_keeps_calls_at_its_rate(env, hub, stats):
    """A budget tighter than the (unthrottled) hub: calls slow down to its rate."""
    budget = RateBudget({Operation.TWIN_READ: Rate(40, 1)})
    async with IotHubService(
        env["IOTHUB_CONNECTION_STRING"], budget=budget, ca_bundle=env["IOTHUB_ROOT_CA"]
    ) as service:
        await service.create_or_update_device(DeviceIdentity("r-1"))
        reads = await completions(lambda _n: service.get_twin("r-1"), 3.0)

    assert 0.95 * 40 <= steady_rate(reads, 0.5, 3.0) <= 1.02 * 40
