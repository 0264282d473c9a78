"""A wave: which devices move together, how fast, and when the wave gives up."""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from bridge.cutover.job import Firmware

__all__ = ["MAX_RETRIES", "RETRIED", "WaveSpec", "WaveState", "job_id_for", "job_sent_key"]

MAX_RETRIES = 10  # AWS IoT Jobs' limit on numberOfRetries
RETRIED = frozenset({"FAILED", "TIMED_OUT"})  # the execution endings AWS can retry


class WaveState(StrEnum):
    """Where a wave stands; the daemon acts on running, aborting and rolling_back."""

    PLANNED = "planned"  # in the store; nothing sent
    RUNNING = "running"  # the daemon schedules, sends the job and watches Azure
    PAUSED = "paused"  # the daemon leaves it alone (the AWS job keeps its own pace)
    ABORTING = "aborting"  # asked to stop: cancel the job, leave the rest on AWS
    ROLLING_BACK = "rolling_back"  # as aborting, and devices still moving are rolled back
    DONE = "done"  # every device has an outcome
    ABORTED = "aborted"  # stopped; devices not moved stayed on AWS


ACTIVE = frozenset({WaveState.RUNNING, WaveState.ABORTING, WaveState.ROLLING_BACK})


class WaveSpec(BaseModel):
    """What `iot-bridge cutover plan` decided for a wave (kept in the store as JSON)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    devices: list[str] = Field(default_factory=list, description="Explicit device ids.")
    group: str | None = Field(default=None, description="Thing group the devices came from.")
    success_threshold: float = Field(
        default=1.0, ge=0, le=1, description="Share of devices that must end on Azure."
    )
    abort_threshold: float = Field(
        default=0.5,
        gt=0,
        le=1,
        description="Share of the wave's devices rolled back past which the wave aborts.",
    )
    deadline_seconds: int = Field(
        default=300, ge=1, description="Seconds a device has to show up on Azure."
    )
    firmware: Firmware | None = Field(
        default=None, description="New device code the job carries (URL, size, SHA-256)."
    )
    thing_type: str | None = Field(default=None, description="Thing type the devices came from.")
    query: str | None = Field(default=None, description="Fleet-index query they came from.")
    max_per_minute: int = Field(default=60, ge=1, le=1000, description="AWS rollout cap.")
    base_per_minute: int | None = Field(
        default=None,
        ge=1,
        le=1000,
        description="Exponential rollout: executions a minute at first (None: a constant "
        "max_per_minute).",
    )
    increment_factor: float = Field(
        default=2.0, ge=1.1, le=5.0, description="Exponential rollout: the rate's multiplier."
    )
    increase_every: int = Field(
        default=10,
        ge=1,
        description="Exponential rollout: devices notified between two increases.",
    )
    retries: int = Field(
        default=0,
        ge=0,
        le=MAX_RETRIES,
        description="Further attempts AWS gives a device whose execution FAILED or TIMED_OUT "
        "(jobExecutionsRetryConfig); its verdict waits for the last one.",
    )

    @model_validator(mode="after")
    def _selected(self) -> WaveSpec:
        if not self.devices:
            raise ValueError("a wave needs at least one device")
        return self

    def rollout_seconds(self) -> float:
        """How long AWS takes to offer the job to every device, at the rollout's pace.

        Exponential: the rate starts at `base_per_minute` and is multiplied by
        `increment_factor` each time `increase_every` more devices were notified, never
        above `max_per_minute`. The estimate counts the whole minutes the last device waits.
        """
        if self.base_per_minute is None:
            return 60.0 * ((len(self.devices) - 1) // self.max_per_minute)
        rate, notified, minutes, since_increase = float(self.base_per_minute), 0, 0, 0
        while True:
            batch = min(int(rate), self.max_per_minute, len(self.devices) - notified)
            notified += batch
            if notified >= len(self.devices):
                return 60.0 * minutes
            since_increase += batch
            while since_increase >= self.increase_every:
                since_increase -= self.increase_every
                rate = min(rate * self.increment_factor, float(self.max_per_minute))
            minutes += 1

    def attempts(self) -> int:
        """How many times AWS may run a device's execution: the first and every retry."""
        return 1 + self.retries

    def attempts_left(self, status: str, attempt: int) -> bool:
        """Whether AWS will run another attempt after an execution ending in `status` on
        `attempt` (1 for the first): FAILED and TIMED_OUT are retried while any are left."""
        return status in RETRIED and attempt < self.attempts()

    def device_seconds(self) -> float:
        """How long a device may take from its job to Azure: the deadline for each attempt."""
        return float(self.deadline_seconds * self.attempts())

    def rollout_config(self) -> dict[str, Any]:
        """jobExecutionsRolloutConfig: a constant cap, or an exponential ramp under it."""
        config: dict[str, Any] = {"maximumPerMinute": self.max_per_minute}
        if self.base_per_minute is not None:
            config["exponentialRate"] = {
                "baseRatePerMinute": self.base_per_minute,
                "incrementFactor": self.increment_factor,
                "rateIncreaseCriteria": {"numberOfNotifiedThings": self.increase_every},
            }
        return config

    def job_settings(self) -> dict[str, Any]:
        """CreateJob's rollout, abort, timeout and retry settings for this wave."""
        settings: dict[str, Any] = {
            "jobExecutionsRolloutConfig": self.rollout_config(),
            "abortConfig": {
                "criteriaList": [
                    {
                        "failureType": "ALL",
                        "action": "CANCEL",
                        "thresholdPercentage": round(self.abort_threshold * 100, 2),
                        # AWS is the backstop only: it judges executions, the bridge judges
                        # arrivals on Azure, so AWS waits until every device has executed.
                        "minNumberOfExecutedThings": len(self.devices),
                    }
                ]
            },
            # AWS counts in minutes; the bridge's own deadline (seconds) is the precise one.
            "timeoutConfig": {"inProgressTimeoutInMinutes": math.ceil(self.deadline_seconds / 60)},
        }
        if self.retries:
            # ALL covers FAILED and TIMED_OUT with one count: `retries` more attempts in all,
            # whichever way each attempt ends (REJECTED and CANCELED are never retried).
            settings["jobExecutionsRetryConfig"] = {
                "criteriaList": [{"failureType": "ALL", "numberOfRetries": self.retries}]
            }
        return settings


def job_id_for(wave: str) -> str:
    """The wave's AWS job id: fixed, so a restart finds the job it already created."""
    safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in wave)
    return f"iot-bridge-cutover-{safe}"[:64]


def job_sent_key(wave: str) -> str:
    """The store checkpoint holding when the wave's job was sent (Unix time, as text)."""
    return f"cutover.{wave}.job_sent_at"
