"""Tier and units from fleet size and message rates, and the options that override them."""

from __future__ import annotations

import pytest

from bridge.plan import PlanError, PlanOptions, Tier, choose_sizing


def sizing(devices, per_device, **options):
    return choose_sizing(devices, PlanOptions(messages_per_device_per_day=per_device, **options))


@pytest.mark.parametrize(
    ("devices", "per_device", "tier", "units"),
    [
        (10, 100, Tier.S1, 1),  # tiny fleet
        (300, 1_440, Tier.S1, 2),  # 432,000/day: just over one S1 quota
        (1_000, 1_440, Tier.S1, 4),  # 1.44M/day: 4 x S1 (100 USD) beats 1 x S2 (250 USD)
        # 14.4M/day at a 500/s peak: 42 x S1 (1,050 USD) beats 5 x S2 (1,250) and 1 x S3.
        (10_000, 1_440, Tier.S1, 42),
        # 144M/day at 5,000/s: S1 would need 417 units (max 200); 1 x S3 beats 42 x S2.
        (100_000, 1_440, Tier.S3, 1),
        # 1.44B/day at 50,000/s: only S3 carries it, with 9 units for the peak.
        (1_000_000, 1_440, Tier.S3, 9),
    ],
)
def test_the_cheapest_tier_that_carries_the_load(devices, per_device, tier, units):
    chosen = sizing(devices, per_device)
    assert (chosen.tier, chosen.units) == (tier, units)
    assert chosen.daily_quota >= chosen.messages_per_day
    assert not chosen.overridden
    assert any("cheapest" in line for line in chosen.explanation)
    assert any(line.startswith("compared at list price") for line in chosen.explanation)


def test_the_peak_rate_can_need_more_units_than_the_daily_quota():
    # 40,000 devices x 1,000/day = 40M/day fits 7 x S2 by quota; the 1,389/s peak needs 12.
    chosen = sizing(40_000, 1_000, tier=Tier.S2)
    assert chosen.units == 12
    assert chosen.d2c_per_second >= 40_000 * 1_000 / 86_400 * 3


def test_a_forced_tier_gets_the_units_it_needs():
    chosen = sizing(1_000, 1_440, tier=Tier.S2)
    assert (chosen.tier, chosen.units, chosen.overridden) == (Tier.S2, 1, True)
    assert any("imposed" in line for line in chosen.explanation)


def test_too_few_forced_units_are_a_warning_not_a_silent_choice():
    chosen = sizing(1_000, 1_440, units=1)
    assert chosen.units == 1
    assert [f.code for f in chosen.findings] == ["UNDERSIZED"]


def test_more_units_than_the_tier_allows_is_refused():
    with pytest.raises(PlanError, match="at most 10"):
        sizing(10, 10, tier=Tier.S3, units=11)


def test_a_fleet_beyond_one_hub_is_an_error_finding():
    chosen = sizing(600_000, 100_000)
    codes = {f.code for f in chosen.findings}
    assert codes == {"FLEET_EXCEEDS_HUB", "HUB_IDENTITY_LIMIT"}
    assert (chosen.tier, chosen.units) == (Tier.S3, 10)


def test_partitions_grow_with_the_fleet():
    assert sizing(100, 1, tier=Tier.S1).partitions == 4
    assert sizing(200_000, 1).partitions == 16
