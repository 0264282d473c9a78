"""IoT Hub's operation throttles per tier and unit count: the one table the project keeps.

Rates follow Microsoft's "IoT Hub quotas and throttling" page (spec section 5); Free shares
S1's column. The bridge paces itself with it (`bridge.azure.budget`) and the emulator
enforces it (`bridge_sim.iothub.quotas`), so both always agree.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Literal

__all__ = ["DAILY_MESSAGES", "Operation", "Rate", "Tier", "daily_messages", "rate_for"]

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


DAILY_MESSAGES: dict[str, int] = {"F1": 8_000, "S1": 400_000, "S2": 6_000_000, "S3": 300_000_000}
"""Messages (4 KB blocks for D2C) a hub accepts per UTC day, per unit; then it refuses."""


def daily_messages(tier: Tier, units: int) -> int:
    """The daily message quota of a hub of `units` units of `tier` (F1 has one unit)."""
    if units < 1:
        raise ValueError("a hub has at least one unit")
    return DAILY_MESSAGES[tier] * (1 if tier == "F1" else units)
