"""RateBudget's pacing on the real event loop, and its rates from the one quota table."""

from __future__ import annotations

import asyncio
import time

import pytest

from bridge.azure import Operation, Rate, RateBudget, rate_for


async def timed(coroutine) -> float:
    start = time.monotonic()
    await coroutine
    return time.monotonic() - start


async def test_burst_then_the_sustained_rate():
    # 20 a second, one second of it held back: a burst of 2 (a tenth of a second's worth).
    budget = RateBudget({Operation.TWIN_UPDATE: Rate(20, 1)})
    assert budget.burst(Operation.TWIN_UPDATE) == pytest.approx(2)

    burst = await timed(asyncio.gather(*(budget.acquire(Operation.TWIN_UPDATE) for _ in range(2))))
    paced = await timed(asyncio.gather(*(budget.acquire(Operation.TWIN_UPDATE) for _ in range(20))))

    assert burst < 0.05
    assert 0.95 <= paced <= 1.15


async def test_operation_classes_are_paced_independently():
    budget = RateBudget({Operation.QUERY: Rate(1, 60), Operation.TWIN_READ: Rate(100, 1)})
    await budget.acquire(Operation.QUERY)

    elapsed = await timed(asyncio.gather(*(budget.acquire(Operation.TWIN_READ) for _ in range(30))))

    assert elapsed < 0.4
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.2):
            await budget.acquire(Operation.QUERY)


async def test_callers_are_served_in_order():
    budget = RateBudget({Operation.JOBS: Rate(50, 1)})
    order: list[int] = []

    async def caller(number: int) -> None:
        await budget.acquire(Operation.JOBS)
        order.append(number)

    tasks = []
    for number in range(15):
        tasks.append(asyncio.create_task(caller(number)))
        await asyncio.sleep(0)
    await asyncio.gather(*tasks)

    assert order == list(range(15))


async def test_a_cancelled_waiter_spends_nothing():
    budget = RateBudget({Operation.JOBS: Rate(10, 1)}, latency_reserve=0.9)
    await budget.acquire(Operation.JOBS)
    waiter = asyncio.create_task(budget.acquire(Operation.JOBS))
    await asyncio.sleep(0.01)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter

    # The token the cancelled waiter was waiting for is still there for the next caller.
    assert await timed(budget.acquire(Operation.JOBS)) < 0.12


async def test_bulk_costs_one_token_per_device_and_never_more_than_the_burst():
    budget = RateBudget({Operation.IDENTITY_REGISTRY: Rate(100, 60)})
    burst = budget.burst(Operation.IDENTITY_REGISTRY)
    assert burst == pytest.approx(100 - 100 / 60)

    await budget.acquire(Operation.IDENTITY_REGISTRY, 98)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.2):
            await budget.acquire(Operation.IDENTITY_REGISTRY, 2)
    with pytest.raises(ValueError, match="exceed the burst"):
        await budget.acquire(Operation.IDENTITY_REGISTRY, 100)


async def test_a_429_spends_what_is_saved_up():
    budget = RateBudget({Operation.TWIN_READ: Rate(100, 1)}, latency_reserve=0.5)
    assert await timed(budget.acquire(Operation.TWIN_READ, 40)) < 0.05

    budget.throttled(Operation.TWIN_READ)

    assert await timed(budget.acquire(Operation.TWIN_READ, 10)) >= 0.09


async def test_unlimited_never_waits():
    budget = RateBudget.unlimited()

    elapsed = await timed(
        asyncio.gather(*(budget.acquire(Operation.QUERY, 1000) for _ in range(1000)))
    )

    assert elapsed < 0.5
    assert budget.is_unlimited
    assert budget.rate(Operation.QUERY) is None
    assert budget.burst(Operation.QUERY) is None


@pytest.mark.parametrize("tier", ["F1", "S1", "S2", "S3"])
@pytest.mark.parametrize("units", [1, 4])
def test_tier_rates_are_microsofts_table(tier, units):
    budget = RateBudget.for_tier(tier, units)

    for operation in Operation:
        assert budget.rate(operation) == pytest.approx(rate_for(tier, units, operation).per_second)


def test_documented_s1_and_s3_figures():
    s1, s3 = RateBudget.for_tier("S1"), RateBudget.for_tier("S3")
    assert s1.rate(Operation.IDENTITY_REGISTRY) == pytest.approx(100 / 60)
    assert s1.rate(Operation.TWIN_UPDATE) == 50
    assert s1.rate(Operation.QUERY) == pytest.approx(20 / 60)
    assert s3.rate(Operation.IDENTITY_REGISTRY) == pytest.approx(5000 / 60)
    assert s3.rate(Operation.TWIN_READ) == 500


def test_a_share_of_the_hub_for_each_replica():
    budget = RateBudget.for_tier("S3", 2, share=0.25)

    assert budget.rate(Operation.TWIN_UPDATE) == pytest.approx(250 * 2 * 0.25)
    with pytest.raises(ValueError, match="share"):
        RateBudget.for_tier("S1", share=0)
    with pytest.raises(ValueError, match="unit"):
        RateBudget.for_tier("S1", 0)
