"""Token buckets and the tier table, on a fake clock."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge_sim.iothub.quotas import Operation, Quotas, Rate, TokenBucket, rate_for


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("tier", "units", "operation", "rate"),
    [
        ("S1", 1, Operation.IDENTITY_REGISTRY, Rate(100, 60)),
        ("S1", 1, Operation.QUERY, Rate(20, 60)),
        ("S1", 1, Operation.TWIN_READ, Rate(100, 1)),
        ("S1", 1, Operation.TWIN_UPDATE, Rate(50, 1)),
        ("S1", 1, Operation.NEW_CONNECTION, Rate(100, 1)),
        ("S1", 9, Operation.D2C_SEND, Rate(108, 1)),
        ("S1", 3, Operation.JOBS, Rate(300, 60)),
        ("F1", 1, Operation.D2C_SEND, Rate(100, 1)),
        ("S2", 2, Operation.NEW_CONNECTION, Rate(240, 1)),
        ("S2", 1, Operation.QUERY, Rate(20, 60)),
        ("S3", 1, Operation.IDENTITY_REGISTRY, Rate(5000, 60)),
        ("S3", 2, Operation.TWIN_READ, Rate(1000, 1)),
        ("S3", 1, Operation.TWIN_UPDATE, Rate(250, 1)),
        ("S3", 1, Operation.QUERY, Rate(1000, 60)),
        ("S3", 1, Operation.D2C_SEND, Rate(6000, 1)),
    ],
)
def test_tier_table(tier, units, operation, rate):
    assert rate_for(tier, units, operation) == rate


def test_zero_units_is_rejected():
    with pytest.raises(ValueError, match="unit"):
        rate_for("S1", 0, Operation.QUERY)


def test_bucket_allows_one_window_then_refills():
    clock = FakeClock()
    bucket = TokenBucket(Rate(20, 60), clock)
    assert all(bucket.try_take() for _ in range(20))
    assert not bucket.try_take()
    clock.now += 3.0  # 20 per minute refills one token every 3 s
    assert bucket.try_take()
    assert not bucket.try_take()
    clock.now += 3600
    assert bucket.available == 20


def test_cost_above_capacity_never_fits():
    bucket = TokenBucket(Rate(100, 60), FakeClock())
    assert not bucket.try_take(101)
    assert bucket.try_take(100)


def test_disabled_quotas_let_everything_through():
    quotas = Quotas(None)
    assert not quotas.enabled
    assert all(quotas.try_acquire(Operation.QUERY) for _ in range(10_000))


def test_overrides_and_independent_buckets():
    clock = FakeClock()
    quotas = Quotas("S1", overrides={Operation.QUERY: Rate(1, 60)}, clock=clock)
    assert quotas.try_acquire(Operation.QUERY)
    assert not quotas.try_acquire(Operation.QUERY)
    assert quotas.try_acquire(Operation.TWIN_READ)


@given(st.lists(st.tuples(st.floats(0, 5), st.floats(0.1, 10)), max_size=50))
def test_bucket_never_grants_more_than_capacity_plus_refill(steps):
    clock = FakeClock()
    rate = Rate(10, 1)
    bucket = TokenBucket(rate, clock)
    granted = 0.0
    for advance, cost in steps:
        clock.now += advance
        if bucket.try_take(cost):
            granted += cost
    assert granted <= rate.amount + clock.now * rate.per_second + 1e-6
