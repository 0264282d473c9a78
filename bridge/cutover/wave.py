"""A wave: which devices move together, how fast, and when the wave gives up."""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["WaveSpec", "WaveState", "job_id_for", "job_sent_key"]


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
    max_per_minute: int = Field(default=60, ge=1, le=1000, description="AWS rollout cap.")

    @model_validator(mode="after")
    def _selected(self) -> WaveSpec:
        if not self.devices:
            raise ValueError("a wave needs at least one device")
        return self

    def rollout_seconds(self) -> float:
        """How long AWS takes to offer the job to every device at `max_per_minute`."""
        return 60.0 * ((len(self.devices) - 1) // self.max_per_minute)

    def job_settings(self) -> dict[str, Any]:
        """CreateJob's rollout, abort and timeout settings for this wave."""
        return {
            "jobExecutionsRolloutConfig": {"maximumPerMinute": self.max_per_minute},
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


def job_id_for(wave: str) -> str:
    """The wave's AWS job id: fixed, so a restart finds the job it already created."""
    safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in wave)
    return f"iot-bridge-cutover-{safe}"[:64]


def job_sent_key(wave: str) -> str:
    """The store checkpoint holding when the wave's job was sent (Unix time, as text)."""
    return f"cutover.{wave}.job_sent_at"
