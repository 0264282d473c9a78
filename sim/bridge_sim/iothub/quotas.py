"""IoT Hub's operation throttles as token buckets, per tier and unit count.

The rates come from `bridge.azure.quotas`, the one table the bridge paces itself with too
(Microsoft's quotas page, spec section 5; Free shares S1's column). Each bucket
holds one window's worth of tokens: a minute's worth for per-minute throttles, a second's
worth for per-second ones. That lets a burst through the way IoT Hub queues short bursts,
and rejects once the window's allowance is spent, which is what a migration must pace for.
`Quotas(None)` disables throttling altogether.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

from bridge.azure.quotas import Operation, Rate, Tier, rate_for

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

__all__ = ["Operation", "Quotas", "Rate", "Tier", "TokenBucket", "rate_for"]


class TokenBucket:
    """Refills at `rate.per_second`, holds at most `rate.amount` (one window's worth)."""

    def __init__(self, rate: Rate, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self._clock = clock
        self._tokens = float(rate.amount)
        self._updated = clock()
        # The device endpoint may call from another thread than the REST server.
        self._lock = threading.Lock()

    def _refill(self) -> None:
        now = self._clock()
        elapsed = max(0.0, now - self._updated)
        self._tokens = min(float(self.rate.amount), self._tokens + elapsed * self.rate.per_second)
        self._updated = now

    @property
    def available(self) -> float:
        with self._lock:
            self._refill()
            return self._tokens

    def try_take(self, cost: float = 1.0) -> bool:
        """Take `cost` tokens if all are there; a cost above capacity never fits."""
        with self._lock:
            self._refill()
            if cost > self._tokens:
                return False
            self._tokens -= cost
            return True


class Quotas:
    """One bucket per operation class; `tier=None` lets everything through."""

    def __init__(
        self,
        tier: Tier | None = "S1",
        units: int = 1,
        *,
        overrides: Mapping[Operation, Rate] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clock = clock
        self.tier: Tier | None = None
        self.units = units
        self._buckets: dict[Operation, TokenBucket] = {}
        self.reconfigure(tier, units, overrides=overrides)

    def reconfigure(
        self,
        tier: Tier | None,
        units: int = 1,
        *,
        overrides: Mapping[Operation, Rate] | None = None,
    ) -> None:
        """Switch tier and units in place (full buckets), so every endpoint sharing us sees it."""
        buckets: dict[Operation, TokenBucket] = {}
        if tier is not None:
            for operation in Operation:
                rate = (overrides or {}).get(operation) or rate_for(tier, units, operation)
                buckets[operation] = TokenBucket(rate, self._clock)
        self.tier, self.units, self._buckets = tier, units, buckets

    @property
    def enabled(self) -> bool:
        return self.tier is not None

    def try_acquire(self, operation: Operation, cost: float = 1.0) -> bool:
        """Spend `cost` of `operation`'s allowance; False means answer 429."""
        bucket = self._buckets.get(operation)
        return bucket is None or bucket.try_take(cost)

    def rate(self, operation: Operation) -> Rate | None:
        bucket = self._buckets.get(operation)
        return None if bucket is None else bucket.rate
