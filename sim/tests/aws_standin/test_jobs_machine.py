"""The pure jobs rules: execution transitions, timers, rollout pacing, abort criteria, topics."""

from __future__ import annotations

import dataclasses
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from bridge_sim.aws.jobs_machine import (
    DEVICE_TRANSITIONS,
    SERVICE_STATUSES,
    TERMINAL,
    ExecutionState,
    ExecutionStatus,
    JobsError,
    abort_triggered,
    device_update,
    expire,
    process_details,
    retry,
    service_update,
)
from bridge_sim.aws.jobs_rollout import RolloutPacer
from bridge_sim.aws.jobs_wire import DeviceRequest, parse_topic

S = ExecutionStatus
statuses = st.sampled_from(list(ExecutionStatus))


class ExecutionLifecycle(RuleBasedStateMachine):
    """Any sequence of device, service and clock events keeps AWS's execution invariants."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0
        self.state = ExecutionState(queued_at=0.0, last_updated_at=0.0)
        self.history: list[ExecutionStatus] = [S.QUEUED]

    def _accepted(self, new: ExecutionState) -> None:
        assert new.version_number == self.state.version_number + 1
        assert new.last_updated_at == self.now
        self.state = new
        self.history.append(new.status)

    @rule(
        status=statuses,
        stale=st.booleans(),
        step=st.one_of(st.none(), st.integers(-2, 3)),
        timeout=st.one_of(st.none(), st.integers(1, 3)),
    )
    def device_reports(
        self, status: ExecutionStatus, stale: bool, step: int | None, timeout: int | None
    ) -> None:
        expected = self.state.version_number - 1 if stale else self.state.version_number
        allowed = status in DEVICE_TRANSITIONS.get(self.state.status, frozenset())
        bad_step = step is not None and step not in {-1, 1, 2, 3}
        refusal = (
            "VersionMismatch"
            if stale
            else "InvalidStateTransition"
            if not allowed
            else "InvalidRequest"
            if bad_step
            else None
        )

        def update() -> ExecutionState:
            return device_update(
                self.state,
                status,
                now=self.now,
                expected_version=expected,
                step_timeout_minutes=step,
                in_progress_timeout_minutes=timeout,
            )

        if refusal is not None:
            with pytest.raises(JobsError) as error:
                update()
            assert error.value.code == refusal
            return
        new = update()
        self._accepted(new)
        if step == -1 or status in TERMINAL:
            assert new.step_deadline is None
        elif step is not None:
            assert new.step_deadline == self.now + step * 60

    @rule(status=statuses, force=st.booleans())
    def service_ends(self, status: ExecutionStatus, force: bool) -> None:
        refused = (
            self.state.status in TERMINAL
            or status not in SERVICE_STATUSES
            or (self.state.status is S.IN_PROGRESS and not force)
        )
        if refused:
            with pytest.raises(JobsError) as error:
                service_update(self.state, status, now=self.now, force=force)
            assert error.value.code == "InvalidStateTransition"
            return
        new = service_update(self.state, status, now=self.now, force=force)
        self._accepted(new)

    @rule(seconds=st.integers(0, 200))
    def time_passes(self, seconds: int) -> None:
        self.now += seconds
        deadline = self.state.deadline()
        new = expire(self.state, self.now)
        if new is None:
            assert self.state.terminal or deadline is None or self.now < deadline
            return
        assert new.status is S.TIMED_OUT
        self._accepted(new)

    @precondition(lambda self: self.state.status in DEVICE_TRANSITIONS[S.QUEUED])
    @invariant()
    def started_when_the_device_moved_it(self) -> None:
        assert self.state.started_at is not None

    @invariant()
    def terminal_is_final(self) -> None:
        firsts = [i for i, s in enumerate(self.history) if s in TERMINAL]
        if firsts:
            assert len(self.history) == firsts[0] + 1

    @invariant()
    def terminal_runs_no_timers(self) -> None:
        if self.state.terminal:
            assert self.state.deadline() is None
            assert self.state.seconds_before_timeout(self.now) is None


ExecutionLifecycle.TestCase.settings = settings(max_examples=150, stateful_step_count=20)
TestExecutionLifecycle = ExecutionLifecycle.TestCase


def test_in_progress_timer_starts_when_the_device_starts() -> None:
    state = ExecutionState(queued_at=0.0)
    started = device_update(state, "IN_PROGRESS", now=100.0, in_progress_timeout_minutes=2)
    assert started.in_progress_deadline == 220.0
    assert started.seconds_before_timeout(130.0) == 90
    still = device_update(started, "IN_PROGRESS", now=200.0, in_progress_timeout_minutes=2)
    assert still.in_progress_deadline == 220.0, "the in-progress timer cannot be extended"
    assert expire(still, 219.9) is None
    timed_out = expire(still, 220.0)
    assert timed_out is not None
    assert timed_out.status is S.TIMED_OUT


def test_status_details_merge_and_validate() -> None:
    state = device_update(
        ExecutionState(queued_at=0.0), "IN_PROGRESS", now=1.0, status_details={"a": "1"}
    )
    state = device_update(state, "IN_PROGRESS", now=2.0, status_details={"b": "2"})
    assert state.status_details == {"a": "1", "b": "2"}
    for details in ({"k": ""}, {"": "v"}, {"k": "v" * 1025}, ["k"], {"k" * 129: "v"}):
        with pytest.raises(JobsError) as error:
            device_update(state, "IN_PROGRESS", now=3.0, status_details=details)
        assert error.value.code == "InvalidRequest"


def test_unknown_status_is_an_invalid_request() -> None:
    with pytest.raises(JobsError) as error:
        device_update(ExecutionState(queued_at=0.0), "DONE", now=1.0)
    assert error.value.code == "InvalidRequest"


def test_rollout_pacer_allows_maximum_per_minute_windows() -> None:
    pacer = RolloutPacer({"maximumPerMinute": 3}, start=0.0)
    assert pacer.quota(0.0) == 3
    pacer.record_notified(3)
    assert pacer.quota(59.9) == 0
    assert pacer.quota(60.0) == 3
    pacer.record_notified(1)
    assert pacer.quota(119.0) == 2
    assert pacer.quota(300.0) == 3
    assert RolloutPacer(None, start=0.0).quota(0.0) == 1000, "AWS's default pace"


def test_rollout_pacer_exponential_rate_is_capped_by_maximum() -> None:
    config = {
        "maximumPerMinute": 10,
        "exponentialRate": {
            "baseRatePerMinute": 2,
            "incrementFactor": 2.5,
            "rateIncreaseCriteria": {"numberOfNotifiedThings": 2},
        },
    }
    pacer = RolloutPacer(config, start=0.0)
    assert pacer.quota(0.0) == 2
    pacer.record_notified(2)
    assert pacer.rate == 5
    pacer.record_notified(2)
    assert pacer.rate == 10
    pacer.record_notified(5)
    assert pacer.rate == 10


@given(
    finished=st.lists(st.sampled_from(sorted(TERMINAL)), max_size=30),
    threshold=st.integers(1, 100),
    minimum=st.integers(1, 10),
    failure_type=st.sampled_from(["FAILED", "REJECTED", "TIMED_OUT", "ALL"]),
)
def test_abort_fires_exactly_at_threshold(
    finished: list[ExecutionStatus], threshold: int, minimum: int, failure_type: str
) -> None:
    criterion = {
        "failureType": failure_type,
        "action": "CANCEL",
        "thresholdPercentage": threshold,
        "minNumberOfExecutedThings": minimum,
    }
    counted = {
        "FAILED": {S.FAILED},
        "REJECTED": {S.REJECTED},
        "TIMED_OUT": {S.TIMED_OUT},
        "ALL": {S.FAILED, S.REJECTED, S.TIMED_OUT},
    }[failure_type]
    failures = sum(1 for s in finished if s in counted)
    fired = abort_triggered([criterion], Counter([*finished, S.QUEUED, S.IN_PROGRESS]))
    expected = len(finished) >= minimum and failures / len(finished) * 100 >= threshold
    assert (fired is not None) == expected


def test_process_details_counts_every_status() -> None:
    details = process_details(Counter([S.QUEUED, S.QUEUED, S.TIMED_OUT, S.REMOVED]))
    assert details["numberOfQueuedThings"] == 2
    assert details["numberOfTimedOutThings"] == 1
    assert details["numberOfRemovedThings"] == 1
    assert sum(details.values()) == 4
    assert len(details) == len(ExecutionStatus)


@pytest.mark.parametrize(
    ("topic", "expected"),
    [
        ("$aws/things/t1/jobs/get", DeviceRequest("t1", "get")),
        ("$aws/things/t1/jobs/start-next", DeviceRequest("t1", "start-next")),
        ("$aws/things/t1/jobs/job-7/get", DeviceRequest("t1", "get", "job-7")),
        ("$aws/things/t1/jobs/$next/get", DeviceRequest("t1", "get", "$next")),
        ("$aws/things/t1/jobs/job-7/update", DeviceRequest("t1", "update", "job-7")),
        ("$aws/things/t1/jobs/get/accepted", None),
        ("$aws/things/t1/jobs/notify-next", None),
        ("$aws/things/t1/jobs/job-7/update/accepted", None),
        ("$aws/things/t1/shadow/update", None),
        ("$aws/things//jobs/get", None),
        ("things/t1/jobs/get", None),
    ],
)
def test_parse_topic(topic: str, expected: DeviceRequest | None) -> None:
    assert parse_topic(topic) == expected


def test_reply_topics() -> None:
    assert DeviceRequest("t", "get").reply_topic("accepted") == "$aws/things/t/jobs/get/accepted"
    assert (
        DeviceRequest("t", "update", "j").reply_topic("rejected")
        == "$aws/things/t/jobs/j/update/rejected"
    )


def test_retry_grants_new_attempts_per_failure_type() -> None:
    criteria = [
        {"failureType": "TIMED_OUT", "numberOfRetries": 1},
        {"failureType": "ALL", "numberOfRetries": 2},
    ]
    failed = ExecutionState(queued_at=0.0, status=S.FAILED, execution_number=1)
    second = retry(failed, criteria, now=5.0)
    assert second is not None
    assert (second.status, second.execution_number, second.retry_attempt) == (S.QUEUED, 2, 1)
    assert second.queued_at == 5.0
    third = retry(dataclasses.replace(second, status=S.TIMED_OUT), criteria, now=6.0)
    assert third is not None
    assert third.retry_attempt == 2
    assert retry(dataclasses.replace(third, status=S.FAILED), criteria, now=7.0) is None
    assert retry(dataclasses.replace(failed, status=S.REJECTED), criteria, now=7.0) is None
    assert retry(failed, [], now=7.0) is None
