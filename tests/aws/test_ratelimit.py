"""The AWS control-plane rate budgets: paced, and never stuck."""

import asyncio
import time

from bridge.aws.ratelimit import RateLimiter


async def test_a_rate_under_one_call_a_second_still_lets_calls_through():
    # 9/s scaled by 0.2 is 1.8 calls/s; by 0.05 it is 0.45: a bucket holding less than one
    # token would wait forever.
    limiter = RateLimiter(scale=0.05)
    started = time.monotonic()
    async with asyncio.timeout(30):
        await limiter.acquire("describe_event_configurations")  # the burst of one
        await limiter.acquire("describe_event_configurations")  # ~2.2 s later
    elapsed = time.monotonic() - started
    assert 1.5 < elapsed < 30


async def test_calls_are_paced_at_the_rate():
    limiter = RateLimiter({"list_things": 20.0})
    started = time.monotonic()
    for _ in range(30):
        await limiter.acquire("list_things")
    # 20 in the first second's bucket, then 10 more at 20/s: at least half a second.
    assert time.monotonic() - started >= 0.45


async def test_scale_zero_removes_the_budgets():
    limiter = RateLimiter(scale=0)
    async with asyncio.timeout(5):
        for _ in range(1000):
            await limiter.acquire("list_things")
