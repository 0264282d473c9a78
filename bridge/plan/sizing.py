"""IoT Hub tier and units from the fleet size and message rates."""

from __future__ import annotations

import math
from dataclasses import dataclass

from bridge.errors import PlanError
from bridge.mapping.models import PlanFinding, PlanOptions, Sizing, Tier

__all__ = ["HUB_IDENTITY_LIMIT", "PEAK_FACTOR", "TIER_LIMITS", "TierLimits", "choose_sizing"]

HUB_IDENTITY_LIMIT = 1_000_000
# Fleets report in bursts (top of the minute, after outages); size for three times the mean.
PEAK_FACTOR = 3
_SECONDS_PER_DAY = 86_400


@dataclass(frozen=True)
class TierLimits:
    """Per-unit quotas of one tier (Microsoft's quotas page, wire contract section 5)."""

    messages_per_day: int
    d2c_per_unit: float
    d2c_floor: float
    identity_ops_per_minute: int
    max_units: int
    monthly_usd_per_unit: int  # list price, used only to rank candidates


TIER_LIMITS: dict[Tier, TierLimits] = {
    Tier.S1: TierLimits(400_000, 12, 100, 100, 200, 25),
    Tier.S2: TierLimits(6_000_000, 120, 0, 100, 200, 250),
    Tier.S3: TierLimits(300_000_000, 6_000, 0, 5_000, 10, 2_500),
}


def choose_sizing(devices: int, options: PlanOptions) -> Sizing:
    """The cheapest tier and units that carry the fleet, unless the options impose them."""
    per_day = devices * options.messages_per_device_per_day
    peak = per_day / _SECONDS_PER_DAY * PEAK_FACTOR
    findings: list[PlanFinding] = []
    tiers = [options.tier] if options.tier else list(Tier)
    candidates = [(tier, _units_needed(tier, per_day, peak)) for tier in tiers]
    feasible = [(t, u) for t, u in candidates if u <= TIER_LIMITS[t].max_units]
    if feasible:
        tier, needed = min(feasible, key=lambda c: TIER_LIMITS[c[0]].monthly_usd_per_unit * c[1])
    else:
        tier = tiers[-1]
        needed = TIER_LIMITS[tier].max_units
        findings.append(
            _finding(
                "error",
                "FLEET_EXCEEDS_HUB",
                f"{per_day:,} messages/day at a peak of {peak:,.0f}/s exceed one {tier} hub; "
                "split the fleet across hubs (DPS can allocate between them)",
            )
        )
    units = options.units or needed
    limits = TIER_LIMITS[tier]
    if units > limits.max_units:
        raise PlanError(f"{tier} allows at most {limits.max_units} units, not {units}")
    if units < needed:
        findings.append(
            _finding(
                "warning",
                "UNDERSIZED",
                f"{units} {tier} units are fewer than the {needed} the message rate needs; "
                "expect throttling (429) and a rejected daily quota",
            )
        )
    if devices * 2 > HUB_IDENTITY_LIMIT:
        findings.append(
            _finding(
                "error",
                "HUB_IDENTITY_LIMIT",
                f"{devices:,} devices plus one relay module each exceed the "
                f"{HUB_IDENTITY_LIMIT:,} identities of a hub; use gateway relay identities "
                "or several hubs",
            )
        )
    d2c = _d2c_per_second(tier, units)
    explanation = [
        (
            f"{devices:,} devices x {options.messages_per_device_per_day:,} messages/day "
            f"= {per_day:,} messages/day, each counted as one 4 KB message"
        ),
        f"peak device-to-cloud rate estimated at {PEAK_FACTOR}x the mean: {peak:,.1f}/s",
        (
            f"{units} x {tier}: {limits.messages_per_day * units:,} messages/day and "
            f"{d2c:,.0f} sends/s"
        ),
        _choice_reason(tier, needed, options),
        _alternatives(candidates),
        _registration_estimate(devices, tier, units),
    ]
    return Sizing(
        tier=tier,
        units=units,
        devices=devices,
        messages_per_day=per_day,
        daily_quota=limits.messages_per_day * units,
        d2c_per_second=d2c,
        partitions=_partitions(devices),
        overridden=bool(options.tier or options.units),
        explanation=explanation,
        findings=findings,
    )


def _units_needed(tier: Tier, per_day: int, peak: float) -> int:
    limits = TIER_LIMITS[tier]
    by_quota = math.ceil(per_day / limits.messages_per_day)
    by_rate = 1 if peak <= limits.d2c_floor else math.ceil(peak / limits.d2c_per_unit)
    return max(1, by_quota, by_rate)


def _d2c_per_second(tier: Tier, units: int) -> float:
    limits = TIER_LIMITS[tier]
    return max(limits.d2c_floor, limits.d2c_per_unit * units)


def _choice_reason(tier: Tier, needed: int, options: PlanOptions) -> str:
    if options.tier or options.units:
        imposed = " and ".join(
            text
            for text in (
                f"tier {options.tier}" if options.tier else "",
                f"{options.units} units" if options.units else "",
            )
            if text
        )
        return f"{imposed} imposed by the options (the rates need {needed} x {tier})"
    return f"cheapest tier that carries the load: {needed} x {tier}"


def _alternatives(candidates: list[tuple[Tier, int]]) -> str:
    shown = [
        f"{units} x {tier} ({units * TIER_LIMITS[tier].monthly_usd_per_unit:,} USD/month)"
        if units <= TIER_LIMITS[tier].max_units
        else f"{tier} cannot (needs {units} units, max {TIER_LIMITS[tier].max_units})"
        for tier, units in candidates
    ]
    # S1 and S2 cost the same per message once rate-bound, so S1 usually wins on price.
    return "compared at list price per unit: " + ", ".join(shown)


def _registration_estimate(devices: int, tier: Tier, units: int) -> str:
    # Identity operations are counted per device even in bulk calls; each device also gets
    # its relay module.
    per_minute = TIER_LIMITS[tier].identity_ops_per_minute * units
    minutes = math.ceil(devices * 2 / per_minute)
    unit = "minute" if minutes == 1 else "minutes"
    return (
        f"registering {devices:,} devices and their relay modules takes about {minutes:,} "
        f"{unit} at {per_minute:,} identity operations/minute (import jobs are faster for "
        "large fleets)"
    )


def _partitions(devices: int) -> int:
    """Partitions of the built-in endpoint: more readers in parallel for bigger fleets."""
    for limit, partitions in ((10_000, 4), (100_000, 8), (500_000, 16)):
        if devices <= limit:
            return partitions
    return 32


def _finding(severity: str, code: str, message: str) -> PlanFinding:
    return PlanFinding.model_validate({"severity": severity, "code": code, "message": message})
