"""`RateBudget`: one asyncio token bucket per IoT Hub operation class, shared by the daemon.

IoT Hub throttles each operation class on its own (identity registry, twin reads, twin
updates, queries, jobs...), per hub, at rates set by tier and units (`bridge.azure.quotas`).
Everything the daemon sends to one hub spends from one budget, so callers are paced to the
sustained rate instead of discovering it through 429s. Bulk registry calls spend one token
per device: Microsoft's quotas page says bulk registry operations (not import/export jobs)
count against the identity registry throttle per device ("a bulk operation to create 50
devices on an S1 hub with one unit: only two are accepted per minute"), and the emulator
charges them the same way.

IoT Hub lets one window's allowance through at once (a minute's worth for per-minute
throttles, a second's worth for per-second ones). A bucket here holds that allowance less
`latency_reserve` seconds' worth of the rate: requests paced here reach the hub after
different latencies (a new TLS connection, a busy network or CPU), so some arrive closer
together than they were sent, and the reserve, never spent, absorbs that spread so the hub's
own bucket is never overdrawn. A bucket always holds at least a tenth of a second's worth,
so timer granularity wastes none of the rate. The sustained rate stays the full quota.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from bridge.azure.quotas import Operation, Rate, Tier, rate_for

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

__all__ = ["RateBudget"]

# Clock granularity: a bucket this close to `n` tokens counts as holding them.
_EPSILON = 1e-9
# Sleeping overshoots by a millisecond or so; a bucket this deep loses no rate to it.
_MIN_BURST_SECONDS = 0.1


class _Bucket:
    """Refills at `per_second` up to `capacity`; waiters are served first come, first served."""

    def __init__(self, per_second: float, capacity: float, clock: Callable[[], float]) -> None:
        self.per_second = per_second
        self.capacity = capacity
        self._clock = clock
        self._tokens = capacity
        self._updated = clock()
        # Holding the lock while sleeping keeps the order fair and wakes one waiter at a time.
        self._lock = asyncio.Lock()

    def _refill(self) -> None:
        now = self._clock()
        elapsed = max(0.0, now - self._updated)
        self._tokens = min(self.capacity, self._tokens + elapsed * self.per_second)
        self._updated = now

    async def take(self, n: float) -> None:
        async with self._lock:
            while True:
                self._refill()
                if self._tokens + _EPSILON >= n:
                    self._tokens -= n
                    return
                await asyncio.sleep((n - self._tokens) / self.per_second)

    def drain(self) -> None:
        self._refill()
        self._tokens = min(self._tokens, 0.0)


class RateBudget:
    """Paces calls to one hub: `await budget.acquire(Operation.TWIN_UPDATE)` before each.

    Args:
        rates: The hub's throttle per operation class; None for no pacing at all.
        share: The fraction of the hub's quotas this process may use (1/replicas when
            several replicas share one hub).
        latency_reserve: Seconds of sustained rate kept out of every burst.
        clock: Monotonic seconds; for tests.
    """

    def __init__(
        self,
        rates: Mapping[Operation, Rate] | None = None,
        *,
        share: float = 1.0,
        latency_reserve: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 0 < share <= 1:
            raise ValueError("share must be in (0, 1]")
        if latency_reserve < 0:
            raise ValueError("latency_reserve must not be negative")
        self.is_unlimited = rates is None
        self._buckets: dict[Operation, _Bucket] = {}
        for operation, rate in (rates or {}).items():
            per_second, allowance = rate.per_second * share, rate.amount * share
            floor = max(per_second * _MIN_BURST_SECONDS, 1.0)
            capacity = min(allowance, max(allowance - per_second * latency_reserve, floor))
            self._buckets[operation] = _Bucket(per_second, capacity, clock)

    @classmethod
    def for_tier(
        cls, tier: Tier, units: int = 1, *, share: float = 1.0, latency_reserve: float = 1.0
    ) -> RateBudget:
        """The budget of a hub of `units` units of `tier`, from Microsoft's quotas."""
        rates = {operation: rate_for(tier, units, operation) for operation in Operation}
        return cls(rates, share=share, latency_reserve=latency_reserve)

    @classmethod
    def for_hub(cls, tier: Tier | None, units: int = 1) -> RateBudget:
        """The budget of the configured hub: its tier's quotas, or none when no tier is set."""
        return cls.for_tier(tier, units) if tier else cls.unlimited()

    @classmethod
    def unlimited(cls) -> RateBudget:
        """A budget that never waits: for tests and benchmarks against an unthrottled hub."""
        return cls(None)

    def rate(self, operation: Operation) -> float | None:
        """Operations per second `operation` is paced to; None when it is not paced."""
        bucket = self._buckets.get(operation)
        return None if bucket is None else bucket.per_second

    def burst(self, operation: Operation) -> float | None:
        """The most `acquire` takes at once for `operation`; None when it is not paced."""
        bucket = self._buckets.get(operation)
        return None if bucket is None else bucket.capacity

    async def acquire(self, operation: Operation, n: float = 1) -> None:
        """Wait until `n` operations of this class fit in the budget, and spend them."""
        if n <= 0:
            return
        bucket = self._buckets.get(operation)
        if bucket is None:
            return
        if n > bucket.capacity + _EPSILON:
            raise ValueError(
                f"{n:g} {operation.value} operations at once exceed the burst IoT Hub allows "
                f"({bucket.capacity:g}); split the call"
            )
        await bucket.take(n)

    def throttled(self, operation: Operation) -> None:
        """IoT Hub answered 429 anyway (another client shares the hub): spend what is saved."""
        bucket = self._buckets.get(operation)
        if bucket is not None:
            bucket.drain()

    def __repr__(self) -> str:
        if self.is_unlimited:
            return "RateBudget(unlimited)"
        rates = ", ".join(f"{op.value}={b.per_second:g}/s" for op, b in self._buckets.items())
        return f"RateBudget({rates})"
