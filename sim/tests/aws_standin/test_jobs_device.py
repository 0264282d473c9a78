"""The jobs device MQTT API, driven through JobsEngine.handle against a real MotoServer."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from aws_standin.test_jobs_harness import START, Harness

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture
def h() -> Iterator[Harness]:
    harness = Harness()
    yield harness
    harness.close()


async def test_full_device_flow_completes_the_job(h: Harness) -> None:
    [arn] = h.things("dev1")
    h.job("cutover-1", [arn])
    [notify_next] = h.messages("$aws/things/dev1/jobs/notify-next")
    assert notify_next["execution"]["jobId"] == "cutover-1"
    assert notify_next["execution"]["jobDocument"] == {"operation": "cutover"}

    outcome, pending = await h.device("dev1", "get", {"clientToken": "c1"})
    assert outcome == "accepted"
    assert pending["clientToken"] == "c1"
    assert pending["inProgressJobs"] == []
    assert [j["jobId"] for j in pending["queuedJobs"]] == ["cutover-1"]
    assert pending["queuedJobs"][0]["versionNumber"] == 1
    assert pending["timestamp"] == int(START)

    h.now += 10
    outcome, started = await h.device(
        "dev1", "start-next", {"clientToken": "c2", "statusDetails": {"step": "download"}}
    )
    assert outcome == "accepted"
    execution = started["execution"]
    assert execution["status"] == "IN_PROGRESS"
    assert execution["versionNumber"] == 2
    assert execution["startedAt"] == int(START) + 10
    assert execution["statusDetails"] == {"step": "download"}
    assert execution["jobDocument"] == {"operation": "cutover"}

    h.now += 10
    outcome, updated = await h.device(
        "dev1",
        "cutover-1/update",
        {
            "status": "SUCCEEDED",
            "expectedVersion": 2,
            "includeJobExecutionState": True,
            "includeJobDocument": True,
            "clientToken": "c3",
        },
    )
    assert outcome == "accepted"
    assert updated["executionState"] == {
        "status": "SUCCEEDED",
        "statusDetails": {"step": "download"},
        "versionNumber": 3,
    }
    assert updated["jobDocument"] == {"operation": "cutover"}
    assert updated["clientToken"] == "c3"

    [event] = h.messages("$aws/events/jobExecution/cutover-1/succeeded")
    assert event["eventType"] == "JOB_EXECUTION"
    assert event["operation"] == "succeeded"
    assert event["thingArn"] == arn
    assert event["status"] == "SUCCEEDED"
    [completed] = h.messages("$aws/events/job/cutover-1/completed")
    assert completed["eventType"] == "JOB"
    assert completed["status"] == "COMPLETED"
    assert completed["jobProcessDetails"]["numberOfSucceededThings"] == 1
    assert h.messages("$aws/things/dev1/jobs/notify-next")[-1] == {"timestamp": int(START) + 20}

    job = h.iot.describe_job(jobId="cutover-1")["job"]
    assert job["status"] == "COMPLETED"
    assert job["jobProcessDetails"]["numberOfSucceededThings"] == 1
    described = h.iot.describe_job_execution(jobId="cutover-1", thingName="dev1")["execution"]
    assert described["versionNumber"] == 3
    assert described["startedAt"].timestamp() == START + 10
    assert described["lastUpdatedAt"].timestamp() == START + 20
    assert described["statusDetails"] == {"detailsMap": {"step": "download"}}


async def test_start_next_returns_in_progress_before_queued_and_none_when_idle(h: Harness) -> None:
    [arn] = h.things("dev1")
    outcome, empty = await h.device("dev1", "start-next", {"clientToken": "x"})
    assert (outcome, "execution" in empty, empty["clientToken"]) == ("accepted", False, "x")
    h.job("first", [arn])
    h.job("second", [arn])
    await h.device("dev1", "second/update", {"status": "IN_PROGRESS"})
    _, started = await h.device("dev1", "start-next")
    assert started["execution"]["jobId"] == "second"
    assert started["execution"]["versionNumber"] == 2
    _, pending = await h.device("dev1", "get")
    assert [j["jobId"] for j in pending["inProgressJobs"]] == ["second"]
    assert [j["jobId"] for j in pending["queuedJobs"]] == ["first"]


async def test_update_rejections_carry_aws_codes(h: Harness) -> None:
    [arn] = h.things("dev1")
    h.job("j", [arn])
    outcome, mismatch = await h.device(
        "dev1", "j/update", {"status": "IN_PROGRESS", "expectedVersion": 7, "clientToken": "t"}
    )
    assert outcome == "rejected"
    assert mismatch["code"] == "VersionMismatch"
    assert mismatch["clientToken"] == "t"
    assert mismatch["executionState"]["versionNumber"] == 1
    assert isinstance(mismatch["timestamp"], int)

    await h.device("dev1", "j/update", {"status": "FAILED"})
    outcome, late = await h.device("dev1", "j/update", {"status": "SUCCEEDED"})
    assert (outcome, late["code"]) == ("rejected", "InvalidStateTransition")
    assert late["executionState"]["status"] == "FAILED"
    outcome, back = await h.device("dev1", "j/update", {"status": "QUEUED"})
    assert back["code"] == "InvalidStateTransition"

    for body, code in [
        (b"{not json", "InvalidJson"),
        (b"[1, 2]", "InvalidRequest"),
        (b"{}", "InvalidRequest"),
        (json.dumps({"status": "DONE"}).encode(), "InvalidRequest"),
        (b"{" + b" " * (128 * 1024) + b"}", "InvalidRequest"),
    ]:
        outcome, answer = await h.device("dev1", "j/update", body)
        assert (outcome, answer["code"]) == ("rejected", code), body[:20]

    outcome, unknown = await h.device("dev1", "nope/update", {"status": "SUCCEEDED"})
    assert (outcome, unknown["code"]) == ("rejected", "ResourceNotFound")
    outcome, stranger = await h.device("ghost", "j/get")
    assert (outcome, stranger["code"]) == ("rejected", "ResourceNotFound")


async def test_invalid_status_details_and_step_timeout_are_rejected(h: Harness) -> None:
    [arn] = h.things("dev1")
    h.job("j", [arn])
    for body in (
        {"status": "IN_PROGRESS", "statusDetails": {"k": 1}},
        {"status": "IN_PROGRESS", "statusDetails": {"bad key": "v"}},
        {"status": "IN_PROGRESS", "stepTimeoutInMinutes": 0},
        {"status": "IN_PROGRESS", "stepTimeoutInMinutes": "5"},
    ):
        outcome, answer = await h.device("dev1", "j/update", body)
        assert (outcome, answer["code"]) == ("rejected", "InvalidRequest"), body
    assert h.status("j", "dev1") == "QUEUED"


async def test_describe_execution_over_mqtt(h: Harness) -> None:
    [arn] = h.things("dev1")
    h.job("j", [arn], timeoutConfig={"inProgressTimeoutInMinutes": 10})
    outcome, described = await h.device("dev1", "j/get", {"clientToken": "d"})
    assert outcome == "accepted"
    assert described["execution"]["jobDocument"] == {"operation": "cutover"}
    assert described["execution"]["thingName"] == "dev1"
    _, bare = await h.device("dev1", "j/get", {"includeJobDocument": False})
    assert "jobDocument" not in bare["execution"]
    outcome, wrong = await h.device("dev1", "j/get", {"executionNumber": 2})
    assert (outcome, wrong["code"]) == ("rejected", "ResourceNotFound")
    await h.device("dev1", "start-next")
    h.now += 60
    _, nxt = await h.device("dev1", "$next/get")
    assert nxt["execution"]["jobId"] == "j"
    assert nxt["execution"]["approximateSecondsBeforeTimedOut"] == 540


async def test_notify_lists_pending_executions_on_each_change(h: Harness) -> None:
    [arn] = h.things("dev1")
    h.job("a", [arn])
    h.job("b", [arn])
    notifies = h.messages("$aws/things/dev1/jobs/notify")
    assert [[j["jobId"] for j in n["jobs"]["QUEUED"]] for n in notifies] == [["a"], ["a", "b"]]
    # The next job stays "a", so notify-next is not repeated for "b".
    assert len(h.messages("$aws/things/dev1/jobs/notify-next")) == 1
    await h.device("dev1", "a/update", {"status": "REJECTED"})
    assert h.messages("$aws/things/dev1/jobs/notify")[-1]["jobs"] == {
        "QUEUED": [{"jobId": "b", **_times(), "versionNumber": 1, "executionNumber": 1}]
    }
    assert h.messages("$aws/things/dev1/jobs/notify-next")[-1]["execution"]["jobId"] == "b"
    assert h.messages("$aws/events/jobExecution/a/rejected")[0]["status"] == "REJECTED"


def _times() -> dict[str, int]:
    return {"queuedAt": int(START), "lastUpdatedAt": int(START)}


async def test_ignores_foreign_topics_and_survives_garbage(h: Harness) -> None:
    await h.engine.handle("$aws/things/dev1/shadow/update", b"{}")
    await h.engine.handle("$aws/things//jobs/get", b"{}")
    await h.engine.handle("not/a/jobs/topic", b"\xff\xfe")
    assert h.published == []
    outcome, answer = await h.device("dev1", "get", b"\xff\xfe")
    assert (outcome, answer["code"]) == ("rejected", "InvalidJson")
