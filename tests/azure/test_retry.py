"""Backoff timing and Retry-After parsing."""

from __future__ import annotations

import datetime as dt
import random

import pytest

from bridge.azure import HubStats, Operation, RetryPolicy
from bridge.azure.retry import parse_retry_after


def test_full_jitter_stays_under_the_growing_ceiling():
    policy = RetryPolicy(base_delay=0.5, max_delay=4.0, rng=random.Random(7))

    for retry, ceiling in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (9, 4.0)]:
        delays = [policy.delay(retry) for _ in range(200)]
        assert all(0 <= d <= ceiling for d in delays)
        # Full jitter spreads retries over the whole interval.
        assert min(delays) < ceiling * 0.1
        assert max(delays) > ceiling * 0.9


def test_retry_after_wins_but_is_capped():
    policy = RetryPolicy(max_retry_after=30)

    assert policy.delay(1, retry_after=7) == 7
    assert policy.delay(5, retry_after=600) == 30
    assert RetryPolicy.instant().delay(3, retry_after=5) == 0


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("12", 12.0),
        (" 0.5 ", 0.5),
        ("Wed, 21 Oct 2015 07:28:10 GMT", 10.0),
        ("Wed, 21 Oct 2015 07:27:00 GMT", 0.0),
        (None, None),
        ("", None),
        ("soon", None),
    ],
)
def test_parse_retry_after(header, seconds):
    now = dt.datetime(2015, 10, 21, 7, 28, 0, tzinfo=dt.UTC)
    assert parse_retry_after(header, now) == seconds


def test_policy_rejects_nonsense():
    with pytest.raises(ValueError, match="attempts"):
        RetryPolicy(attempts=0)
    with pytest.raises(ValueError, match="negative"):
        RetryPolicy(base_delay=-1)


def test_stats_count_and_tell_the_listener():
    heard = []
    stats = HubStats(listener=lambda event, op: heard.append((event, op)))

    stats.record("request", Operation.TWIN_UPDATE)
    stats.record("throttled", Operation.TWIN_UPDATE)
    stats.record("retry", Operation.TWIN_UPDATE)

    assert stats.requests[Operation.TWIN_UPDATE] == 1
    assert stats.throttled[Operation.TWIN_UPDATE] == 1
    assert stats.retries[Operation.TWIN_UPDATE] == 1
    assert heard == [
        ("request", Operation.TWIN_UPDATE),
        ("throttled", Operation.TWIN_UPDATE),
        ("retry", Operation.TWIN_UPDATE),
    ]
