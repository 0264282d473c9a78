"""The engine speaks the wire format of the real AWS IoT Device SDK (awsiot.iotjobs) models.

Requests are built with the SDK's request classes and replies parsed with its response
classes, so a field the SDK names differently fails here; no broker is involved.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest
from awsiot import iotjobs

from aws_standin.test_jobs_harness import START, Harness

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture
def h() -> Iterator[Harness]:
    harness = Harness()
    yield harness
    harness.close()


async def _send(h: Harness, topic: str, request: object) -> tuple[str, dict[str, object]]:
    payload = json.dumps(request.to_payload()).encode()  # type: ignore[attr-defined]
    start = len(h.published)
    await h.engine.handle(topic, payload)
    [(reply_topic, reply)] = [(t, p) for t, p in h.published[start:] if t.startswith(topic + "/")]
    return reply_topic.rsplit("/", 1)[-1], reply


async def test_sdk_models_round_trip_a_job(h: Harness) -> None:
    [arn] = h.things("dev1")
    h.job("sdk-job", [arn])
    next_event = iotjobs.NextJobExecutionChangedEvent.from_payload(
        h.messages("$aws/things/dev1/jobs/notify-next")[-1]
    )
    assert next_event.execution.job_id == "sdk-job"
    assert next_event.execution.job_document == {"operation": "cutover"}
    # The SDK reads seconds into naive local datetimes.
    assert next_event.execution.queued_at.timestamp() == START
    changed = iotjobs.JobExecutionsChangedEvent.from_payload(
        h.messages("$aws/things/dev1/jobs/notify")[-1]
    )
    assert [s.job_id for s in changed.jobs[iotjobs.JobStatus.QUEUED]] == ["sdk-job"]

    outcome, raw = await _send(
        h,
        "$aws/things/dev1/jobs/get",
        iotjobs.GetPendingJobExecutionsRequest(thing_name="dev1", client_token="t1"),
    )
    pending = iotjobs.GetPendingJobExecutionsResponse.from_payload(raw)
    assert outcome == "accepted"
    assert pending.client_token == "t1"
    assert [s.job_id for s in pending.queued_jobs] == ["sdk-job"]

    outcome, raw = await _send(
        h,
        "$aws/things/dev1/jobs/start-next",
        iotjobs.StartNextPendingJobExecutionRequest(
            thing_name="dev1", step_timeout_in_minutes=5, status_details={"phase": "start"}
        ),
    )
    started = iotjobs.StartNextJobExecutionResponse.from_payload(raw)
    assert outcome == "accepted"
    assert started.execution.status == iotjobs.JobStatus.IN_PROGRESS
    assert started.execution.status_details == {"phase": "start"}
    assert started.execution.version_number == 2

    outcome, raw = await _send(
        h,
        "$aws/things/dev1/jobs/sdk-job/get",
        iotjobs.DescribeJobExecutionRequest(
            thing_name="dev1", job_id="sdk-job", include_job_document=True, execution_number=1
        ),
    )
    described = iotjobs.DescribeJobExecutionResponse.from_payload(raw)
    assert (outcome, described.execution.thing_name) == ("accepted", "dev1")

    outcome, raw = await _send(
        h,
        "$aws/things/dev1/jobs/sdk-job/update",
        iotjobs.UpdateJobExecutionRequest(
            thing_name="dev1",
            job_id="sdk-job",
            status=iotjobs.JobStatus.SUCCEEDED,
            expected_version=1,
            client_token="t2",
        ),
    )
    rejected = iotjobs.RejectedError.from_payload(raw)
    assert outcome == "rejected"
    assert rejected.code == iotjobs.RejectedErrorCode.VERSION_MISMATCH
    assert rejected.client_token == "t2"
    assert rejected.execution_state.version_number == 2

    outcome, raw = await _send(
        h,
        "$aws/things/dev1/jobs/sdk-job/update",
        iotjobs.UpdateJobExecutionRequest(
            thing_name="dev1",
            job_id="sdk-job",
            status=iotjobs.JobStatus.SUCCEEDED,
            expected_version=2,
            include_job_execution_state=True,
        ),
    )
    updated = iotjobs.UpdateJobExecutionResponse.from_payload(raw)
    assert outcome == "accepted"
    assert updated.execution_state.status == iotjobs.JobStatus.SUCCEEDED
    assert updated.execution_state.version_number == 3
    idle = iotjobs.NextJobExecutionChangedEvent.from_payload(
        h.messages("$aws/things/dev1/jobs/notify-next")[-1]
    )
    assert idle.execution is None
