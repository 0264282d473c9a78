"""When and how fast a job reaches its things: schedulingConfig and jobExecutionsRolloutConfig."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["DEFAULT_PER_MINUTE", "RolloutPacer", "Schedule", "parse_schedule"]

SECONDS_PER_MINUTE = 60
# AWS paces every job: without a rollout config, at most 1000 executions a minute.
DEFAULT_PER_MINUTE = 1000
END_BEHAVIORS = frozenset({"STOP_ROLLOUT", "CANCEL", "FORCE_CANCEL"})


@dataclass(frozen=True)
class Schedule:
    """A job's schedulingConfig as epoch seconds; None where the config sets no bound."""

    start: float | None = None
    end: float | None = None
    end_behavior: str = "STOP_ROLLOUT"


def _epoch(text: Any) -> float | None:
    if text is None:
        return None
    # AWS takes `yyyy-MM-dd'T'HH:mm` in UTC; fromisoformat also takes seconds and offsets.
    moment = datetime.fromisoformat(str(text))
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def parse_schedule(config: Mapping[str, Any] | None) -> Schedule:
    """Read schedulingConfig; raise ValueError for what AWS would reject."""
    config = config or {}
    schedule = Schedule(
        start=_epoch(config.get("startTime")),
        end=_epoch(config.get("endTime")),
        end_behavior=str(config.get("endBehavior") or "STOP_ROLLOUT"),
    )
    if schedule.end_behavior not in END_BEHAVIORS:
        raise ValueError(f"unknown endBehavior {schedule.end_behavior}")
    if schedule.start is not None and schedule.end is not None and schedule.end <= schedule.start:
        raise ValueError("endTime must be after startTime")
    return schedule


class RolloutPacer:
    """How many executions a job may still make available, per jobExecutionsRolloutConfig."""

    def __init__(self, config: Mapping[str, Any] | None, *, start: float) -> None:
        config = config or {}
        self._maximum: int | None = config.get("maximumPerMinute")
        self._exponential: Mapping[str, Any] = config.get("exponentialRate") or {}
        base = self._exponential.get("baseRatePerMinute")
        self.rate: float = base if base is not None else self._maximum or DEFAULT_PER_MINUTE
        self._window_start = start
        self._sent_in_window = 0
        self._notified_since_increase = 0
        self._succeeded_since_increase = 0

    def quota(self, now: float) -> int:
        """How many more executions may be notified now."""
        if now >= self._window_start + SECONDS_PER_MINUTE:
            elapsed = (now - self._window_start) // SECONDS_PER_MINUTE
            self._window_start += elapsed * SECONDS_PER_MINUTE
            self._sent_in_window = 0
        return max(0, int(self.rate) - self._sent_in_window)

    def record_notified(self, count: int) -> None:
        self._sent_in_window += count
        self._notified_since_increase += count
        self._maybe_increase()

    def record_succeeded(self) -> None:
        self._succeeded_since_increase += 1
        self._maybe_increase()

    def _maybe_increase(self) -> None:
        if not self._exponential:
            return
        criteria = self._exponential.get("rateIncreaseCriteria") or {}
        notified_goal = criteria.get("numberOfNotifiedThings")
        succeeded_goal = criteria.get("numberOfSucceededThings")
        if (notified_goal and self._notified_since_increase >= notified_goal) or (
            succeeded_goal and self._succeeded_since_increase >= succeeded_goal
        ):
            factor = float(self._exponential.get("incrementFactor", 1))
            ceiling = self._maximum or DEFAULT_PER_MINUTE
            self.rate = min(ceiling, math.ceil(self.rate * factor))
            self._notified_since_increase = self._succeeded_since_increase = 0
