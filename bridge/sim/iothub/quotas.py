"""IoT Hub's operation throttles as token buckets, per tier and unit count.

Rates follow Microsoft's quotas page (spec section 5); Free shares S1's column. Each bucket
holds one window's worth of tokens: a minute's worth for per-minute throttles, a second's
worth for per-second ones. That lets a burst through the way IoT Hub queues short bursts,
and rejects once the window's allowance is spent, which is what a migration must pace for.
`Quotas(None)` disables throttling altogether.
"""

from __future__ import annotations

import enum
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

__all__ = ["Operation", "Quotas", "Rate", "Tier", "TokenBucket", "rate_for"]

Tier = Literal["F1", "S1", "S2", "S3"]


class Operation(enum.StrEnum):
    """The operation classes IoT Hub throttles separately."""

    IDENTITY_REGISTRY = "identityRegistry"
    TWIN_READ = "twinRead"
    TWIN_UPDATE = "twinUpdate"
    QUERY = "query"
    JOBS = "jobs"
    D2C_SEND = "d2cSend"
    NEW_CONNECTION = "newConnection"


@dataclass(frozen=True)
class Rate:
    """A sustained rate: `amount` operations every `window` seconds (1 or 60)."""

    amount: float
    window: float

    @property
    def per_second(self) -> float:
        return self.amount / self.window


def _per_second(amount: float) -> Rate:
    return Rate(amount, 1.0)


def _per_minute(amount: float) -> Rate:
    return Rate(amount, 60.0)


def rate_for(tier: Tier, units: int, operation: Operation) -> Rate:
    """The throttle for `operation` on a hub of `units` units of `tier`."""
    if units < 1:
        raise ValueError("a hub has at least one unit")
    if tier == "S3":
        s3 = {
            Operation.IDENTITY_REGISTRY: _per_minute(5000 * units),
            Operation.TWIN_READ: _per_second(500 * units),
            Operation.TWIN_UPDATE: _per_second(250 * units),
            Operation.QUERY: _per_minute(1000 * units),
            Operation.JOBS: _per_minute(5000 * units),
            Operation.D2C_SEND: _per_second(6000 * units),
            Operation.NEW_CONNECTION: _per_second(6000 * units),
        }
        return s3[operation]
    if tier == "S2":
        s2 = {
            Operation.IDENTITY_REGISTRY: _per_minute(100 * units),
            Operation.TWIN_READ: _per_second(max(100, 10 * units)),
            Operation.TWIN_UPDATE: _per_second(max(50, 5 * units)),
            Operation.QUERY: _per_minute(20 * units),
            Operation.JOBS: _per_minute(100 * units),
            Operation.D2C_SEND: _per_second(120 * units),
            Operation.NEW_CONNECTION: _per_second(120 * units),
        }
        return s2[operation]
    # F1 and S1 share a column; the "higher of" floors keep small hubs usable.
    s1 = {
        Operation.IDENTITY_REGISTRY: _per_minute(100 * units),
        Operation.TWIN_READ: _per_second(max(100, 10 * units)),
        Operation.TWIN_UPDATE: _per_second(max(50, 5 * units)),
        Operation.QUERY: _per_minute(max(20, units)),
        Operation.JOBS: _per_minute(100 * units),
        Operation.D2C_SEND: _per_second(max(100, 12 * units)),
        Operation.NEW_CONNECTION: _per_second(max(100, 12 * units)),
    }
    return s1[operation]


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
