"""The last hour of throughput and lag, in memory, read from the daemon's own metrics.

Every few seconds the sampler reads two figures from the Prometheus registry: events
applied so far (a counter) and the event-lag histogram's cumulative buckets. Differences
between consecutive samples give what happened in between, so a restart or a gap loses
nothing but its own interval, and the page needs no second source of truth.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bridge.metrics import Metrics

__all__ = ["Sample", "StatusSampler", "quantile"]

_SPACING = 0.9  # kept samples are at least this share of the interval apart


@dataclass(frozen=True, slots=True)
class Sample:
    """The counters at one instant."""

    at: float  # wall clock, seconds
    applied: float  # device writes that landed on Azure so far
    lag: tuple[float, ...]  # cumulative lag observations per bucket bound (+Inf last)
    dead_letters: float  # messages and changes given up on so far


def quantile(q: float, bounds: Sequence[float], counts: Sequence[float]) -> float | None:
    """The q-quantile of a histogram given cumulative counts, as Prometheus interpolates it."""
    total = counts[-1] if counts else 0
    if total <= 0:
        return None
    rank = q * total
    lower, below = 0.0, 0.0
    for bound, count in zip(bounds, counts, strict=True):
        if count >= rank:
            if math.isinf(bound):  # above every finite bucket: say the highest we know
                return lower
            inside = count - below
            return lower + (bound - lower) * ((rank - below) / inside if inside else 1.0)
        lower, below = bound, count
    return lower  # pragma: no cover - the +Inf bucket holds everything


def _written(labels: dict[str, str]) -> bool:
    """A device write that landed on Azure (not a stale event skipped, not a refusal)."""
    return labels.get("kind") == "sync" and labels.get("outcome") != "rejected"


class StatusSampler:
    """A ring buffer of `Sample`s covering `window` seconds, taken every `every` seconds."""

    def __init__(
        self,
        metrics: Metrics,
        *,
        every: float = 5.0,
        window: float = 3600.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if every <= 0 or window < every:
            raise ValueError("sample at a positive interval shorter than the window")
        self._metrics = metrics
        self._clock = clock
        self.every = every
        self.window = window
        # Samples stay at least `_SPACING * every` apart (see `sample`), so this holds a window.
        self.samples: deque[Sample] = deque(maxlen=math.ceil(window / (every * _SPACING)) + 2)
        self.bounds: tuple[float, ...] = ()

    def sample(self) -> Sample:
        """Read the counters now and keep the reading.

        A reading close after the previous one replaces it rather than adding one, so
        pages asking for fresh figures every few seconds do not shorten the window.
        """
        applied = sum(
            s.value
            for metric in self._metrics.events_applied.collect()
            for s in metric.samples
            if s.name.endswith("_total") and _written(s.labels)
        )
        buckets = sorted(
            (float(s.labels["le"]), s.value)
            for metric in self._metrics.event_lag.collect()
            for s in metric.samples
            if s.name.endswith("_bucket")
        )
        self.bounds = tuple(bound for bound, _ in buckets)
        dead = sum(
            s.value
            for metric in self._metrics.dead_letters.collect()
            for s in metric.samples
            if s.name.endswith("_total")
        )
        taken = Sample(self._clock(), applied, tuple(v for _, v in buckets), dead)
        found = self.samples
        # The newest sample floats (is replaced) until it is far enough from the one before.
        if len(found) >= 2 and found[-1].at - found[-2].at < self.every * _SPACING:
            found[-1] = taken
        else:
            self.samples.append(taken)
        return taken

    async def run(self) -> None:
        """Sample every `every` seconds until cancelled."""
        while True:
            self.sample()
            await asyncio.sleep(self.every)

    def _deltas(self, since: float) -> list[tuple[float, Sample, Sample]]:
        """(time, previous, current) for consecutive samples whose later one is after `since`."""
        found = list(self.samples)
        return [(b.at, a, b) for a, b in itertools.pairwise(found) if b.at > since]

    def applied_since(self, seconds: float) -> float:
        """Events applied in the last `seconds`."""
        since = self._clock() - seconds
        return sum(max(b.applied - a.applied, 0) for _, a, b in self._deltas(since))

    def dead_letters_since(self, seconds: float) -> float:
        """Dead letters added in the last `seconds`."""
        since = self._clock() - seconds
        return sum(max(b.dead_letters - a.dead_letters, 0) for _, a, b in self._deltas(since))

    def lag_since(self, seconds: float, q: float) -> float | None:
        """The q-quantile of event lag over the last `seconds`; None when nothing was applied."""
        since = self._clock() - seconds
        return quantile(q, self.bounds, self._lag_counts(self._deltas(since)))

    def per_bin(self, bins: int = 60, width: float = 60.0) -> list[dict[str, float | None]]:
        """Per time bin, oldest first: events applied and lag p50/p99 (None: no samples)."""
        now = self._clock()
        start = now - bins * width
        grouped: list[list[tuple[float, Sample, Sample]]] = [[] for _ in range(bins)]
        for delta in self._deltas(start):
            # Bins are (start, end]: a sample at a minute's end closes that minute.
            index = math.ceil((delta[0] - start) / width) - 1
            grouped[min(max(index, 0), bins - 1)].append(delta)
        answer: list[dict[str, float | None]] = []
        for deltas in grouped:
            if not deltas:
                answer.append({"applied": None, "p50": None, "p99": None})
                continue
            counts = self._lag_counts(deltas)
            answer.append(
                {
                    "applied": sum(max(b.applied - a.applied, 0) for _, a, b in deltas),
                    "p50": quantile(0.5, self.bounds, counts),
                    "p99": quantile(0.99, self.bounds, counts),
                }
            )
        return answer

    def _lag_counts(self, deltas: list[tuple[float, Sample, Sample]]) -> list[float]:
        counts = [0.0] * len(self.bounds)
        for _, a, b in deltas:
            if len(a.lag) != len(counts) or len(b.lag) != len(counts):
                continue
            for i, (before, after) in enumerate(zip(a.lag, b.lag, strict=True)):
                counts[i] += max(after - before, 0)
        return counts
