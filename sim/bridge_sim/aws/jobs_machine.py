"""Pure rules of AWS IoT Jobs: execution transitions, timers, retries, abort criteria.

No I/O and no moto here, so the rules can be tested exhaustively; `jobs.py` applies them
to moto's stored objects.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

__all__ = [
    "DEVICE_TRANSITIONS",
    "PENDING",
    "SERVICE_STATUSES",
    "TERMINAL",
    "ExecutionState",
    "ExecutionStatus",
    "JobsError",
    "abort_triggered",
    "device_update",
    "expire",
    "process_details",
    "retry",
    "service_update",
    "validate_status_details",
]

SECONDS_PER_MINUTE = 60
# AWS: stepTimeoutInMinutes is 1..10080 (7 days); -1 cancels the running step timer.
MAX_STEP_TIMEOUT_MINUTES = 10080
CANCEL_STEP_TIMER = -1
MAX_STATUS_DETAIL_KEY = 128
MAX_STATUS_DETAIL_VALUE = 1024
STATUS_DETAIL_KEY = re.compile(r"[a-zA-Z0-9:_-]+")


class ExecutionStatus(StrEnum):
    """Job execution statuses, as AWS spells them."""

    QUEUED = "QUEUED"
    IN_PROGRESS = "IN_PROGRESS"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    TIMED_OUT = "TIMED_OUT"
    REJECTED = "REJECTED"
    REMOVED = "REMOVED"
    CANCELED = "CANCELED"


S = ExecutionStatus
PENDING = frozenset({S.QUEUED, S.IN_PROGRESS})
TERMINAL = frozenset(S) - PENDING
# What a device may report (jobs-workflow); everything else is the service's to decide.
DEVICE_TRANSITIONS: Mapping[ExecutionStatus, frozenset[ExecutionStatus]] = {
    S.QUEUED: frozenset({S.IN_PROGRESS, S.SUCCEEDED, S.FAILED, S.REJECTED}),
    S.IN_PROGRESS: frozenset({S.IN_PROGRESS, S.SUCCEEDED, S.FAILED, S.REJECTED}),
}
# The statuses only the service sets: cancel_job(_execution), timers, group removal.
SERVICE_STATUSES = frozenset({S.CANCELED, S.TIMED_OUT, S.REMOVED})
FAILURE_TYPES: Mapping[str, frozenset[ExecutionStatus]] = {
    "FAILED": frozenset({S.FAILED}),
    "REJECTED": frozenset({S.REJECTED}),
    "TIMED_OUT": frozenset({S.TIMED_OUT}),
    "ALL": frozenset({S.FAILED, S.REJECTED, S.TIMED_OUT}),
}


class JobsError(Exception):
    """A request AWS IoT Jobs would reject, with its error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class ExecutionState:
    """One job execution as the service tracks it; times are epoch seconds."""

    queued_at: float
    status: ExecutionStatus = S.QUEUED
    version_number: int = 1
    execution_number: int = 1
    retry_attempt: int = 0
    started_at: float | None = None
    last_updated_at: float | None = None
    status_details: Mapping[str, str] = field(default_factory=dict)
    in_progress_deadline: float | None = None
    step_deadline: float | None = None

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    def deadline(self) -> float | None:
        """The earliest time this execution times out, if a timer runs."""
        deadlines = [d for d in (self.in_progress_deadline, self.step_deadline) if d is not None]
        return min(deadlines) if deadlines else None

    def seconds_before_timeout(self, now: float) -> int | None:
        deadline = self.deadline()
        return None if deadline is None else max(0, math.ceil(deadline - now))


def validate_status_details(details: Any) -> dict[str, str]:
    """Return the status details map, or raise InvalidRequest as AWS does for bad ones."""
    if details is None:
        return {}
    if not isinstance(details, dict):
        raise JobsError("InvalidRequest", "statusDetails must be a map of strings")
    for key, value in details.items():
        if not (
            isinstance(value, str)
            and STATUS_DETAIL_KEY.fullmatch(key)
            and len(key) <= MAX_STATUS_DETAIL_KEY
            and 1 <= len(value) <= MAX_STATUS_DETAIL_VALUE
        ):
            raise JobsError("InvalidRequest", f"invalid statusDetails entry {key!r}")
    return dict(details)


def _step_deadline(current: float | None, minutes: Any, now: float) -> float | None:
    if minutes is None:
        return current
    if isinstance(minutes, bool) or not isinstance(minutes, int):
        raise JobsError("InvalidRequest", "stepTimeoutInMinutes must be an integer")
    if minutes == CANCEL_STEP_TIMER:
        return None
    if not 1 <= minutes <= MAX_STEP_TIMEOUT_MINUTES:
        raise JobsError("InvalidRequest", "stepTimeoutInMinutes must be 1..10080 or -1")
    return now + minutes * SECONDS_PER_MINUTE


def device_update(
    state: ExecutionState,
    status: str,
    *,
    now: float,
    expected_version: Any = None,
    status_details: Any = None,
    step_timeout_minutes: Any = None,
    in_progress_timeout_minutes: float | None = None,
) -> ExecutionState:
    """Apply a device's UpdateJobExecution; raise JobsError with AWS's code when refused."""
    try:
        target = ExecutionStatus(status)
    except ValueError:
        raise JobsError("InvalidRequest", f"unknown status {status!r}") from None
    if expected_version is not None and expected_version != state.version_number:
        raise JobsError("VersionMismatch", "expectedVersion does not match versionNumber")
    if target not in DEVICE_TRANSITIONS.get(state.status, frozenset()):
        raise JobsError(
            "InvalidStateTransition", f"cannot move job execution from {state.status} to {target}"
        )
    details = dict(state.status_details)
    # AWS merges the reported details into the stored ones.
    details.update(validate_status_details(status_details))
    step_deadline = _step_deadline(state.step_deadline, step_timeout_minutes, now)
    started_at = state.started_at
    in_progress_deadline = state.in_progress_deadline
    if state.status is S.QUEUED and target is not S.QUEUED:
        started_at = now
        if in_progress_timeout_minutes and target is S.IN_PROGRESS:
            in_progress_deadline = now + in_progress_timeout_minutes * SECONDS_PER_MINUTE
    if target in TERMINAL:
        in_progress_deadline = step_deadline = None
    return dataclasses.replace(
        state,
        status=target,
        version_number=state.version_number + 1,
        started_at=started_at,
        last_updated_at=now,
        status_details=details,
        in_progress_deadline=in_progress_deadline,
        step_deadline=step_deadline,
    )


def service_update(
    state: ExecutionState, status: ExecutionStatus, *, now: float, force: bool = True
) -> ExecutionState:
    """The service ends an execution (cancel, time-out, removal); terminal ones are final."""
    if state.terminal:
        raise JobsError("InvalidStateTransition", f"job execution is already {state.status}")
    if status not in SERVICE_STATUSES:
        raise JobsError("InvalidStateTransition", f"only a device reports {status}")
    if state.status is S.IN_PROGRESS and not force:
        raise JobsError("InvalidStateTransition", "job execution is IN_PROGRESS; use force")
    return dataclasses.replace(
        state,
        status=status,
        version_number=state.version_number + 1,
        last_updated_at=now,
        in_progress_deadline=None,
        step_deadline=None,
    )


def expire(state: ExecutionState, now: float) -> ExecutionState | None:
    """The TIMED_OUT state if a timer of this execution has run out, else None."""
    deadline = state.deadline()
    if state.terminal or deadline is None or now < deadline:
        return None
    return service_update(state, S.TIMED_OUT, now=now)


RETRY_FAILURE_TYPES: Mapping[str, frozenset[ExecutionStatus]] = {
    "FAILED": frozenset({S.FAILED}),
    "TIMED_OUT": frozenset({S.TIMED_OUT}),
    "ALL": frozenset({S.FAILED, S.TIMED_OUT}),
}


def retry(
    state: ExecutionState, criteria: Iterable[Mapping[str, Any]], *, now: float
) -> ExecutionState | None:
    """The next attempt jobExecutionsRetryConfig grants after this ending, or None."""
    for criterion in criteria:
        failing = RETRY_FAILURE_TYPES.get(str(criterion.get("failureType")), frozenset())
        if state.status in failing and state.retry_attempt < int(
            criterion.get("numberOfRetries", 0)
        ):
            return ExecutionState(
                queued_at=now,
                last_updated_at=now,
                execution_number=state.execution_number + 1,
                retry_attempt=state.retry_attempt + 1,
            )
    return None


def process_details(counts: Mapping[ExecutionStatus, int]) -> dict[str, int]:
    """The counters of describe_job's jobProcessDetails, from executions counted by status."""
    names = {
        S.QUEUED: "numberOfQueuedThings",
        S.IN_PROGRESS: "numberOfInProgressThings",
        S.SUCCEEDED: "numberOfSucceededThings",
        S.FAILED: "numberOfFailedThings",
        S.TIMED_OUT: "numberOfTimedOutThings",
        S.REJECTED: "numberOfRejectedThings",
        S.REMOVED: "numberOfRemovedThings",
        S.CANCELED: "numberOfCanceledThings",
    }
    return {name: counts.get(status, 0) for status, name in names.items()}


def abort_triggered(
    criteria: Iterable[Mapping[str, Any]], counts: Mapping[ExecutionStatus, int]
) -> Mapping[str, Any] | None:
    """The first abort criterion met by executions counted by status, or None.

    Executed things are those whose execution reached a terminal state; the failure
    percentage is taken over them once `minNumberOfExecutedThings` have.
    """
    finished = sum(counts.get(status, 0) for status in TERMINAL)
    for criterion in criteria:
        if criterion.get("action", "CANCEL") != "CANCEL":
            continue
        failing = FAILURE_TYPES.get(str(criterion.get("failureType")), frozenset())
        minimum = max(1, int(criterion.get("minNumberOfExecutedThings", 1)))
        if finished < minimum:
            continue
        failures = sum(counts.get(status, 0) for status in failing)
        if failures * 100 >= float(criterion.get("thresholdPercentage", 100)) * finished:
            return criterion
    return None
