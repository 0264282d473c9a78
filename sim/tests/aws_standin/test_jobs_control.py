"""Control-plane behaviour of jobs through boto3 against MotoServer with the engine installed."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from typing import TYPE_CHECKING

import pytest
from botocore.exceptions import ClientError

from aws_standin.test_jobs_harness import START, Harness

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture
def h() -> Iterator[Harness]:
    harness = Harness()
    yield harness
    harness.close()


def _error_code(excinfo: pytest.ExceptionInfo[ClientError]) -> str:
    return str(excinfo.value.response["Error"]["Code"])


def test_group_targets_expand_to_members_of_child_groups(h: Harness) -> None:
    fleet = h.group("fleet")
    h.group("eu", parent="fleet")
    h.group("eu-west", parent="eu")
    h.things("a", group="fleet")
    h.things("b", group="eu")
    h.things("c", group="eu-west")
    [lonely] = h.things("d")
    h.things("outsider")
    h.job("j", [fleet, lonely])
    assert h.statuses("j") == {"a": "QUEUED", "b": "QUEUED", "c": "QUEUED", "d": "QUEUED"}
    job = h.iot.describe_job(jobId="j")["job"]
    assert job["status"] == "IN_PROGRESS"
    assert job["targetSelection"] == "SNAPSHOT"
    assert job["jobProcessDetails"]["numberOfQueuedThings"] == 4
    execution = h.iot.describe_job_execution(jobId="j", thingName="c")["execution"]
    assert (execution["executionNumber"], execution["versionNumber"]) == (1, 1)
    assert execution["queuedAt"].timestamp() == START
    assert "startedAt" not in execution
    assert h.iot.describe_job_execution(jobId="j", thingName="c", executionNumber=1)
    for_thing = h.iot.list_job_executions_for_thing(thingName="b")["executionSummaries"]
    assert [(s["jobId"], s["jobExecutionSummary"]["status"]) for s in for_thing] == [
        ("j", "QUEUED")
    ]


def test_create_job_rejects_what_aws_rejects(h: Harness) -> None:
    [arn] = h.things("a")
    with pytest.raises(ClientError) as big:
        h.job("big", [arn], document=json.dumps({"blob": "x" * 33_000}))
    assert _error_code(big) == "InvalidRequestException"
    with pytest.raises(ClientError) as not_json:
        h.job("bad", [arn], document="{nope")
    assert _error_code(not_json) == "InvalidRequestException"
    with pytest.raises(ClientError) as ghost:
        h.job("ghost", [arn.replace("/a", "/ghost")])
    assert _error_code(ghost) == "ResourceNotFoundException"
    h.job("dup", [arn])
    with pytest.raises(ClientError) as dup:
        h.job("dup", [arn])
    assert _error_code(dup) == "ResourceAlreadyExistsException"
    assert [job["jobId"] for job in h.iot.list_jobs()["jobs"]] == ["dup"]


def test_rollout_maximum_per_minute_paces_notifications(h: Harness) -> None:
    arns = h.things("a", "b", "c", "d", "e")
    h.job("j", arns, jobExecutionsRolloutConfig={"maximumPerMinute": 2})
    assert sorted(h.statuses("j")) == ["a", "b"]
    h.advance(30)
    assert len(h.statuses("j")) == 2
    h.advance(31)
    assert sorted(h.statuses("j")) == ["a", "b", "c", "d"]
    notified = {t.split("/")[2] for t in h.topics() if t.endswith("/jobs/notify-next")}
    assert notified == {"a", "b", "c", "d"}
    h.advance(60)
    assert len(h.statuses("j")) == 5


async def test_exponential_rollout_speeds_up_on_successes(h: Harness) -> None:
    arns = h.things(*[f"t{i}" for i in range(8)])
    rollout = {
        "maximumPerMinute": 100,
        "exponentialRate": {
            "baseRatePerMinute": 1,
            "incrementFactor": 3,
            "rateIncreaseCriteria": {"numberOfSucceededThings": 1},
        },
    }
    h.job("j", arns, jobExecutionsRolloutConfig=rollout)
    assert list(h.statuses("j")) == ["t0"]
    await h.device("t0", "j/update", {"status": "SUCCEEDED"})
    # One success triples the rate to 3 per minute; one of those was used this minute.
    assert len(h.statuses("j")) == 3
    h.advance(61)
    assert len(h.statuses("j")) == 6


async def test_in_progress_and_step_timeouts(h: Harness) -> None:
    arns = h.things("slow", "stepper")
    h.job("j", arns, timeoutConfig={"inProgressTimeoutInMinutes": 2})
    await h.device("slow", "start-next")
    await h.device("stepper", "start-next", {"stepTimeoutInMinutes": 1})
    h.advance(59)
    assert h.statuses("j") == {"slow": "IN_PROGRESS", "stepper": "IN_PROGRESS"}
    execution = h.iot.describe_job_execution(jobId="j", thingName="slow")["execution"]
    assert execution["approximateSecondsBeforeTimedOut"] == 61
    h.advance(2)
    assert h.statuses("j") == {"slow": "IN_PROGRESS", "stepper": "TIMED_OUT"}
    h.advance(60)
    assert h.statuses("j") == {"slow": "TIMED_OUT", "stepper": "TIMED_OUT"}
    events = h.messages("$aws/events/jobExecution/j/timed_out")
    assert [e["thingArn"].rsplit("/", 1)[-1] for e in events] == ["stepper", "slow"]
    assert h.iot.describe_job(jobId="j")["job"]["status"] == "COMPLETED"
    outcome, late = await h.device("slow", "j/update", {"status": "SUCCEEDED"})
    assert (outcome, late["code"]) == ("rejected", "InvalidStateTransition")


async def test_abort_criteria_cancel_the_job(h: Harness) -> None:
    arns = h.things("a", "b", "c", "d")
    abort = {
        "criteriaList": [
            {
                "failureType": "FAILED",
                "action": "CANCEL",
                "thresholdPercentage": 50,
                "minNumberOfExecutedThings": 2,
            }
        ]
    }
    h.job("j", arns, abortConfig=abort)
    await h.device("a", "j/update", {"status": "FAILED"})
    assert h.iot.describe_job(jobId="j")["job"]["status"] == "IN_PROGRESS"
    await h.device("c", "start-next")
    await h.device("b", "j/update", {"status": "SUCCEEDED"})
    job = h.iot.describe_job(jobId="j")["job"]
    assert job["status"] == "CANCELED"
    assert job["reasonCode"]
    assert h.statuses("j") == {"a": "FAILED", "b": "SUCCEEDED", "c": "CANCELED", "d": "CANCELED"}
    [canceled] = h.messages("$aws/events/job/j/canceled")
    assert canceled["jobProcessDetails"]["numberOfCanceledThings"] == 2
    assert len(h.messages("$aws/events/jobExecution/j/canceled")) == 2


async def test_cancel_job_leaves_in_progress_unless_forced(h: Harness) -> None:
    arns = h.things("busy", "idle")
    h.job("j", arns)
    await h.device("busy", "start-next")
    h.iot.cancel_job(jobId="j", reasonCode="MIGRATION_PAUSED", comment="hold")
    assert h.statuses("j") == {"busy": "IN_PROGRESS", "idle": "CANCELED"}
    job = h.iot.describe_job(jobId="j")["job"]
    assert (job["status"], job["reasonCode"]) == ("CANCELED", "MIGRATION_PAUSED")
    [event] = h.messages("$aws/events/job/j/canceled")
    assert (event["comment"], event["reasonCode"]) == ("hold", "MIGRATION_PAUSED")
    # The device may still finish what it started.
    outcome, _ = await h.device("busy", "j/update", {"status": "IN_PROGRESS"})
    assert outcome == "accepted"
    h.iot.cancel_job(jobId="j", force=True)
    assert h.statuses("j") == {"busy": "CANCELED", "idle": "CANCELED"}
    assert h.iot.describe_job(jobId="j")["job"]["forceCanceled"] is True
    assert len(h.messages("$aws/events/job/j/canceled")) == 1
    [busy_notify] = h.messages("$aws/things/busy/jobs/notify")[-1:]
    assert busy_notify["jobs"] == {}


async def test_cancel_and_delete_job_execution(h: Harness) -> None:
    arns = h.things("a", "b")
    h.job("j", arns)
    await h.device("a", "start-next")
    with pytest.raises(ClientError) as busy:
        h.iot.cancel_job_execution(jobId="j", thingName="a")
    assert _error_code(busy) == "InvalidStateTransitionException"
    h.iot.cancel_job_execution(jobId="j", thingName="a", force=True)
    assert h.status("j", "a") == "CANCELED"
    assert h.messages("$aws/events/jobExecution/j/canceled")[0]["thingArn"] == arns[0]
    with pytest.raises(ClientError) as final:
        h.iot.cancel_job_execution(jobId="j", thingName="a", force=True)
    assert _error_code(final) == "InvalidStateTransitionException"
    with pytest.raises(ClientError) as queued:
        h.iot.delete_job_execution(jobId="j", thingName="b", executionNumber=1)
    assert _error_code(queued) == "InvalidStateTransitionException"
    with pytest.raises(ClientError) as unknown:
        h.iot.cancel_job_execution(jobId="j", thingName="nobody")
    assert _error_code(unknown) == "ResourceNotFoundException"
    h.iot.delete_job_execution(jobId="j", thingName="b", executionNumber=1, force=True)
    assert h.statuses("j") == {"a": "CANCELED"}
    # The last unfinished execution is gone, so the job is complete.
    assert h.iot.describe_job(jobId="j")["job"]["status"] == "COMPLETED"
    outcome, _ = await h.device("b", "j/get")
    assert outcome == "rejected"


async def test_delete_job_removes_its_executions(h: Harness) -> None:
    [arn] = h.things("a")
    h.job("j", [arn])
    with pytest.raises(ClientError) as in_progress:
        h.iot.delete_job(jobId="j")
    assert _error_code(in_progress) == "InvalidStateTransitionException"
    h.iot.delete_job(jobId="j", force=True)
    assert h.iot.list_job_executions_for_thing(thingName="a")["executionSummaries"] == []
    [deleted] = h.messages("$aws/events/job/j/deleted")
    assert (deleted["eventType"], deleted["operation"]) == ("JOB", "deleted")
    assert h.messages("$aws/things/a/jobs/notify-next")[-1] == {"timestamp": int(START)}
    for call in (h.iot.delete_job, h.iot.cancel_job, h.iot.describe_job):
        with pytest.raises(ClientError) as gone:
            call(jobId="j")
        assert _error_code(gone) == "ResourceNotFoundException"
    _, pending = await h.device("a", "get")
    assert pending["queuedJobs"] == []


def test_continuous_jobs_follow_group_membership_and_snapshots_do_not(h: Harness) -> None:
    fleet = h.group("fleet")
    h.group("sub", parent="fleet")
    h.things("early", group="fleet")
    h.job("cont", [fleet], targetSelection="CONTINUOUS")
    h.job("snap", [fleet])
    h.things("late", group="fleet")
    h.things("later")
    h.iot.update_thing_groups_for_thing(thingName="later", thingGroupsToAdd=["sub"])
    assert h.statuses("cont") == {"early": "QUEUED", "late": "QUEUED", "later": "QUEUED"}
    assert h.statuses("snap") == {"early": "QUEUED"}
    h.iot.remove_thing_from_thing_group(thingGroupName="fleet", thingName="late")
    assert h.status("cont", "late") == "REMOVED"
    assert h.messages("$aws/events/jobExecution/cont/removed")[0]["status"] == "REMOVED"
    assert h.status("snap", "early") == "QUEUED"
    assert h.iot.describe_job(jobId="cont")["job"]["status"] == "IN_PROGRESS"


async def test_run_loop_ticks_until_cancelled(h: Harness) -> None:
    [arn] = h.things("a")
    h.job("j", [arn], timeoutConfig={"inProgressTimeoutInMinutes": 1})
    await h.device("a", "start-next")
    task = asyncio.create_task(h.engine.run())
    h.now += 61
    for _ in range(200):
        if h.messages("$aws/events/jobExecution/j/timed_out"):
            break
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert h.status("j", "a") == "TIMED_OUT"


async def test_retry_config_queues_a_new_attempt(h: Harness) -> None:
    [arn] = h.things("a")
    retries = {"criteriaList": [{"failureType": "FAILED", "numberOfRetries": 1}]}
    h.job("j", [arn], jobExecutionsRetryConfig=retries)
    await h.device("a", "j/update", {"status": "FAILED"})
    assert len(h.messages("$aws/events/jobExecution/j/failed")) == 1
    execution = h.iot.describe_job_execution(jobId="j", thingName="a")["execution"]
    assert (execution["status"], execution["executionNumber"]) == ("QUEUED", 2)
    assert h.messages("$aws/things/a/jobs/notify-next")[-1]["execution"]["executionNumber"] == 2
    assert h.iot.describe_job(jobId="j")["job"]["status"] == "IN_PROGRESS"
    outcome, _ = await h.device("a", "j/update", {"status": "FAILED", "executionNumber": 1})
    assert outcome == "rejected"
    await h.device("a", "j/update", {"status": "FAILED", "executionNumber": 2})
    assert h.status("j", "a") == "FAILED"
    assert h.iot.describe_job(jobId="j")["job"]["status"] == "COMPLETED"


async def test_summaries_count_retry_attempts(h: Harness) -> None:
    [arn] = h.things("a")
    retries = {"criteriaList": [{"failureType": "ALL", "numberOfRetries": 2}]}
    h.job("j", [arn], jobExecutionsRetryConfig=retries)

    def summary() -> dict:
        [found] = h.iot.list_job_executions_for_job(jobId="j")["executionSummaries"]
        return found["jobExecutionSummary"]

    assert (summary()["status"], summary()["retryAttempt"]) == ("QUEUED", 0)
    await h.device("a", "j/update", {"status": "FAILED"})
    assert (summary()["status"], summary()["retryAttempt"]) == ("QUEUED", 1)
    await h.device("a", "j/update", {"status": "FAILED", "executionNumber": 2})
    await h.device("a", "j/update", {"status": "FAILED", "executionNumber": 3})
    assert (summary()["status"], summary()["retryAttempt"]) == ("FAILED", 2)
    [listed] = h.iot.list_job_executions_for_thing(thingName="a")["executionSummaries"]
    assert listed["jobExecutionSummary"]["retryAttempt"] == 2


@pytest.mark.parametrize(
    "criteria",
    [
        [{"failureType": "REJECTED", "numberOfRetries": 1}],
        [{"failureType": "FAILED", "numberOfRetries": 11}],
        [{"failureType": t, "numberOfRetries": 1} for t in ("FAILED", "TIMED_OUT", "ALL")],
    ],
)
def test_retry_config_outside_aws_limits_is_refused(h: Harness, criteria: list) -> None:
    [arn] = h.things("a")
    with pytest.raises(ClientError) as error:
        h.job("j", [arn], jobExecutionsRetryConfig={"criteriaList": criteria})
    assert _error_code(error) == "InvalidRequestException"


def test_exponential_rate_needs_a_maximum(h: Harness) -> None:
    [arn] = h.things("a")
    rollout = {
        "exponentialRate": {
            "baseRatePerMinute": 1,
            "incrementFactor": 2,
            "rateIncreaseCriteria": {"numberOfNotifiedThings": 1},
        }
    }
    with pytest.raises(ClientError) as error:
        h.job("j", [arn], jobExecutionsRolloutConfig=rollout)
    assert _error_code(error) == "InvalidRequestException"


async def test_scheduled_job_starts_at_start_time_and_cancels_at_end_time(h: Harness) -> None:
    [arn] = h.things("a")
    [other] = h.things("b")
    # AWS schedules to the minute.
    start_epoch = (START + 3600) // 60 * 60
    start = dt.datetime.fromtimestamp(start_epoch, dt.UTC)
    schedule = {
        "startTime": start.strftime("%Y-%m-%dT%H:%M"),
        "endTime": (start + dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"),
        "endBehavior": "CANCEL",
    }
    h.job("later", [arn, other], schedulingConfig=schedule)
    assert h.iot.describe_job(jobId="later")["job"]["status"] == "SCHEDULED"
    assert h.statuses("later") == {}
    h.advance(start_epoch - START - 1)
    assert h.statuses("later") == {}
    h.advance(1)
    assert h.iot.describe_job(jobId="later")["job"]["status"] == "IN_PROGRESS"
    assert h.statuses("later") == {"a": "QUEUED", "b": "QUEUED"}
    await h.device("a", "start-next")
    last_update = h.iot.describe_job(jobId="later")["job"]["lastUpdatedAt"]
    h.advance(60)
    assert h.iot.describe_job(jobId="later")["job"]["lastUpdatedAt"] == last_update
    h.advance(3540)
    job = h.iot.describe_job(jobId="later")["job"]
    assert job["status"] == "CANCELED"
    assert h.statuses("later") == {"a": "IN_PROGRESS", "b": "CANCELED"}
    assert len(h.messages("$aws/events/job/later/canceled")) == 1


def test_bad_schedule_is_rejected(h: Harness) -> None:
    [arn] = h.things("a")
    with pytest.raises(ClientError) as error:
        h.job("j", [arn], schedulingConfig={"startTime": "tomorrow"})
    assert _error_code(error) == "InvalidRequestException"


def test_install_twice_hooks_once(h: Harness) -> None:
    h.engine.install()
    [arn] = h.things("a")
    h.job("j", [arn])
    assert len(h.messages("$aws/things/a/jobs/notify-next")) == 1
    assert h.statuses("j") == {"a": "QUEUED"}
    h.iot.cancel_job(jobId="j")
    assert len(h.messages("$aws/events/job/j/canceled")) == 1
