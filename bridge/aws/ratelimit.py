"""Request-rate budgets per AWS API, so discovery stays under the account's TPS limits."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping

__all__ = ["DEFAULT_RATES", "RateLimiter"]

# Requests per second, a little under AWS IoT's published per-account API limits.
DEFAULT_RATES: Mapping[str, float] = {
    "list_things": 9,
    "list_thing_groups": 9,
    "list_things_in_thing_group": 9,
    "describe_thing_group": 90,
    "list_thing_types": 9,
    "list_certificates": 9,
    "describe_certificate": 9,
    "list_ca_certificates": 9,
    "describe_ca_certificate": 9,
    "list_policies": 9,
    "get_policy": 9,
    "list_targets_for_policy": 9,
    "list_thing_principals": 90,
    "list_named_shadows_for_thing": 90,
    "get_thing_shadow": 3500,
    "update_thing_shadow": 3500,
    "list_topic_rules": 9,
    "get_topic_rule": 9,
    "list_jobs": 9,
    "describe_job": 9,
    "search_index": 9,
}
_DEFAULT_RATE = 9.0


class _Bucket:
    def __init__(self, rate: float) -> None:
        self.rate = rate
        # Room for at least one call: a bucket that holds less than one token (a rate under
        # one call a second) would never let a call through.
        self.capacity = max(rate, 1.0)
        self.tokens = self.capacity
        self.stamp = time.monotonic()
        self.lock = asyncio.Lock()

    async def take(self) -> None:
        async with self.lock:  # FIFO: waiters are served in order
            while True:
                now = time.monotonic()
                self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
                self.stamp = now
                if self.tokens >= 1:
                    self.tokens -= 1
                    return
                await asyncio.sleep((1 - self.tokens) / self.rate)


class RateLimiter:
    """One token bucket per operation; `scale` multiplies every rate (0 disables limits)."""

    def __init__(self, rates: Mapping[str, float] | None = None, *, scale: float = 1.0) -> None:
        self._rates = {**DEFAULT_RATES, **(rates or {})}
        self._scale = scale
        self._buckets: dict[str, _Bucket] = {}

    async def acquire(self, operation: str) -> None:
        """Wait until `operation` may be called."""
        if self._scale <= 0:
            return
        bucket = self._buckets.get(operation)
        if bucket is None:
            rate = self._rates.get(operation, _DEFAULT_RATE) * self._scale
            bucket = self._buckets[operation] = _Bucket(rate)
        await bucket.take()
