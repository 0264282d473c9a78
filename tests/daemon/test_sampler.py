"""The sampler turns the daemon's counters into per-minute throughput and lag quantiles."""

import math

import pytest

from bridge.daemon.sampler import StatusSampler, quantile
from bridge.metrics import Metrics


class Clock:
    def __init__(self):
        self.now = 1_000_000.0

    def __call__(self):
        return self.now


def test_quantile_interpolates_within_a_bucket_like_prometheus():
    bounds = (0.1, 1.0, math.inf)
    assert quantile(0.5, bounds, (0, 10, 10)) == pytest.approx(0.55)
    assert quantile(0.99, bounds, (5, 5, 10)) == 1.0  # beyond every finite bound
    assert quantile(0.5, bounds, (0, 0, 0)) is None


def test_throughput_and_lag_per_minute_come_from_differences_between_samples():
    metrics, clock = Metrics.create(), Clock()
    sampler = StatusSampler(metrics, every=5, clock=clock)
    sampler.sample()
    applied = metrics.events_applied.labels(kind="sync", outcome="synced")
    metrics.events_applied.labels(kind="sync", outcome="rejected").inc(5)  # refused: not counted
    metrics.events_applied.labels(kind="event", outcome="stale").inc(5)  # skipped: not counted
    for minute in range(3):
        for _ in range(12):  # one sample every 5 s
            clock.now += 5
            applied.inc(minute + 1)
            metrics.event_lag.observe(0.02 if minute < 2 else 3.0)
            sampler.sample()
    bins = sampler.per_bin(bins=4, width=60)
    assert [b["applied"] for b in bins] == [None, 12, 24, 36]
    assert bins[1]["p50"] == pytest.approx(0.0175)  # inside the 0.01-0.025 bucket
    assert 2.5 <= bins[3]["p99"] <= 5
    assert sampler.applied_since(60) == 36
    assert sampler.lag_since(60, 0.5) > 2.5


def test_the_ring_buffer_keeps_one_window():
    metrics, clock = Metrics.create(), Clock()
    sampler = StatusSampler(metrics, every=5, window=60, clock=clock)
    for _ in range(100):
        clock.now += 5
        sampler.sample()
    assert len(sampler.samples) <= 16  # a minute at 4.5 s or more apart, and both ends
    metrics.dead_letters.labels(side="aws").inc()
    clock.now += 5
    sampler.sample()
    assert sampler.dead_letters_since(60) == 1


def test_impossible_intervals_are_refused():
    with pytest.raises(ValueError):
        StatusSampler(Metrics.create(), every=0)


def test_readings_asked_for_between_ticks_do_not_shorten_the_window():
    metrics, clock = Metrics.create(), Clock()
    sampler = StatusSampler(metrics, every=5, window=3600, clock=clock)
    applied = metrics.events_applied.labels(kind="sync", outcome="synced")
    for _ in range(3600):  # an hour of a page asking every second, the timer every 5 s
        clock.now += 1
        applied.inc()
        sampler.sample()
    assert sampler.samples[-1].at - sampler.samples[0].at >= 3600 - 10
    assert sampler.applied_since(3600) >= 3590
    assert 60 <= sampler.applied_since(60) <= 65  # whole sampling intervals, ~5 s apart
