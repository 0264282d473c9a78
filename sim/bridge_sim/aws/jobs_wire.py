"""Topics and JSON payloads of the AWS IoT Jobs device MQTT API and of jobs events."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from bridge_sim.aws.jobs_machine import ExecutionState, ExecutionStatus

__all__ = [
    "DeviceRequest",
    "execution_data",
    "execution_state",
    "execution_summary",
    "job_event",
    "job_execution_event",
    "parse_topic",
    "rejected",
]

# AWS IoT's MQTT payload limit; anything larger never reaches the Jobs service.
MAX_PAYLOAD_BYTES = 128 * 1024
REQUEST_OPERATIONS = frozenset({"get", "start-next", "update"})


@dataclass(frozen=True)
class DeviceRequest:
    """Where a device request came from: thing, operation and, for per-job ones, the job."""

    thing_name: str
    operation: str
    job_id: str | None = None

    def reply_topic(self, outcome: str) -> str:
        """The `/accepted` or `/rejected` topic answering this request."""
        middle = f"{self.job_id}/" if self.job_id is not None else ""
        return f"$aws/things/{self.thing_name}/jobs/{middle}{self.operation}/{outcome}"


def parse_topic(topic: str) -> DeviceRequest | None:
    """The request a jobs topic carries, or None for topics the Jobs service ignores."""
    parts = topic.split("/")
    if len(parts) < 5 or parts[:2] != ["$aws", "things"] or parts[3] != "jobs" or not parts[2]:
        return None
    thing_name, rest = parts[2], parts[4:]
    if rest in (["get"], ["start-next"]):
        return DeviceRequest(thing_name, rest[0])
    if (
        len(rest) == 2
        and rest[1] in {"get", "update"}
        and rest[0]
        and rest[0] not in (REQUEST_OPERATIONS | {"notify", "notify-next"})
    ):
        return DeviceRequest(thing_name, rest[1], rest[0])
    return None


def _seconds(value: float | None) -> int | None:
    return None if value is None else int(value)


def _without_none(payload: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in payload.items() if value is not None}


def execution_summary(job_id: str, state: ExecutionState) -> dict[str, Any]:
    """A JobExecutionSummary, as in get/accepted and notify."""
    return _without_none(
        {
            "jobId": job_id,
            "queuedAt": _seconds(state.queued_at),
            "startedAt": _seconds(state.started_at),
            "lastUpdatedAt": _seconds(state.last_updated_at),
            "versionNumber": state.version_number,
            "executionNumber": state.execution_number,
        }
    )


def execution_state(state: ExecutionState) -> dict[str, Any]:
    """A JobExecutionState, as in update/accepted and rejected payloads."""
    return {
        "status": str(state.status),
        "statusDetails": dict(state.status_details),
        "versionNumber": state.version_number,
    }


def execution_data(
    job_id: str, thing_name: str, state: ExecutionState, document: Any, *, now: float
) -> dict[str, Any]:
    """A JobExecution; `document` is the parsed job document, or None to leave it out."""
    return _without_none(
        {
            "jobId": job_id,
            "thingName": thing_name,
            "jobDocument": document,
            "status": str(state.status),
            "statusDetails": dict(state.status_details),
            "queuedAt": _seconds(state.queued_at),
            "startedAt": _seconds(state.started_at),
            "lastUpdatedAt": _seconds(state.last_updated_at),
            "versionNumber": state.version_number,
            "executionNumber": state.execution_number,
            "approximateSecondsBeforeTimedOut": state.seconds_before_timeout(now),
        }
    )


def rejected(
    code: str,
    message: str,
    *,
    client_token: Any,
    now: float,
    state: ExecutionState | None = None,
) -> dict[str, Any]:
    """The body of a `/rejected` reply."""
    return _without_none(
        {
            "code": code,
            "message": message,
            "clientToken": client_token,
            "timestamp": int(now),
            "executionState": execution_state(state) if state is not None else None,
        }
    )


def _millis(value: Any) -> int | None:
    # moto keeps naive UTC datetimes; events carry epoch milliseconds.
    if value is None:
        return None
    return int(value.timestamp() * 1000) if hasattr(value, "timestamp") else int(value)


def job_event(operation: str, job: Any, details: dict[str, int], *, now: float) -> dict[str, Any]:
    """A `$aws/events/job/{jobId}/{operation}` payload."""
    statuses = {
        "completed": "COMPLETED",
        "canceled": "CANCELED",
        "cancellation_in_progress": "CANCELLATION_IN_PROGRESS",
        "deleted": "DELETED",
        "deletion_in_progress": "DELETION_IN_PROGRESS",
    }
    counts = {
        key: value
        for key, value in details.items()
        if key not in {"numberOfQueuedThings", "numberOfInProgressThings"}
    }
    return _without_none(
        {
            "eventType": "JOB",
            "eventId": str(uuid.uuid4()),
            "timestamp": int(now),
            "operation": operation,
            "jobId": job.job_id,
            "status": statuses[operation],
            "targetSelection": job.target_selection,
            "targets": list(job.targets),
            "description": job.description,
            "comment": job.comment,
            "reasonCode": job.reason_code,
            "createdAt": _millis(job.created_at),
            "lastUpdatedAt": _millis(job.last_updated_at),
            "completedAt": _millis(job.completed_at),
            "jobProcessDetails": counts if operation in {"completed", "canceled"} else None,
        }
    )


def job_execution_event(
    job_id: str, thing_arn: str, state: ExecutionState, *, now: float
) -> dict[str, Any]:
    """A `$aws/events/jobExecution/{jobId}/{operation}` payload."""
    return {
        "eventType": "JOB_EXECUTION",
        "eventId": str(uuid.uuid4()),
        "timestamp": int(now),
        "operation": str(state.status).lower(),
        "jobId": job_id,
        "thingArn": thing_arn,
        "status": str(state.status),
        "statusDetails": dict(state.status_details),
    }


def encode(payload: dict[str, Any]) -> bytes:
    """Compact JSON, as AWS sends it."""
    return json.dumps(payload, separators=(",", ":")).encode()


def pending_statuses() -> tuple[ExecutionStatus, ExecutionStatus]:
    """The statuses listed to devices, in the order AWS lists them."""
    return (ExecutionStatus.IN_PROGRESS, ExecutionStatus.QUEUED)
