"""Retry timing (exponential backoff with full jitter, Retry-After) and call counters.

`HubStats` counts requests, retries, 429s and failed calls per operation class; the daemon
passes a `listener` to turn them into Prometheus counters, so this package imports no
metrics library.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from bridge.azure.quotas import Operation

__all__ = ["HubStats", "RetryPolicy", "StatsEvent", "parse_retry_after"]

StatsEvent = Literal["request", "retry", "throttled", "failed"]


@dataclass(frozen=True)
class RetryPolicy:
    """At most `attempts` tries per call; between them, full-jitter exponential backoff.

    The n-th retry waits a uniform random time in [0, min(max_delay, base_delay * 2**(n-1))],
    or what Retry-After says (up to `max_retry_after`) when IoT Hub sends it.
    """

    attempts: int = 8
    base_delay: float = 0.25
    max_delay: float = 30.0
    max_retry_after: float = 60.0
    rng: random.Random = field(default_factory=random.Random, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be at least 1")
        if min(self.base_delay, self.max_delay, self.max_retry_after) < 0:
            raise ValueError("delays must not be negative")

    @classmethod
    def instant(cls, attempts: int = 8) -> RetryPolicy:
        """Retries without waiting at all: for tests."""
        return cls(attempts=attempts, base_delay=0.0, max_delay=0.0, max_retry_after=0.0)

    def delay(self, retry: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number `retry` (1 for the first)."""
        if retry_after is not None:
            return min(max(0.0, retry_after), self.max_retry_after)
        ceiling = min(self.max_delay, self.base_delay * 2 ** (retry - 1))
        return self.rng.uniform(0.0, ceiling)


def parse_retry_after(value: str | None, now: dt.datetime | None = None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date); None if absent/bad."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - (now or dt.datetime.now(dt.UTC))).total_seconds())


@dataclass
class HubStats:
    """Counts per operation class; `listener(event, operation)` hears each one as it happens.

    `requests`: HTTP attempts sent; `retries`: attempts scheduled again; `throttled`: 429
    answers; `failures`: calls that raised (NotFound from a read included).
    """

    requests: Counter[Operation] = field(default_factory=Counter)
    retries: Counter[Operation] = field(default_factory=Counter)
    throttled: Counter[Operation] = field(default_factory=Counter)
    failures: Counter[Operation] = field(default_factory=Counter)
    listener: Callable[[StatsEvent, Operation], None] | None = None

    def record(self, event: StatsEvent, operation: Operation) -> None:
        counter = {
            "request": self.requests,
            "retry": self.retries,
            "throttled": self.throttled,
            "failed": self.failures,
        }[event]
        counter[operation] += 1
        if self.listener is not None:
            self.listener(event, operation)
