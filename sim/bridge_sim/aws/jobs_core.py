"""The jobs engine's state: executions kept in step with moto's objects, rollout, notifications.

Every method here expects the caller to hold the MotoServer lock.
"""

from __future__ import annotations

import json
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from moto.iot.models import FakeJobExecution

from bridge.logging import get_logger
from bridge_sim.aws import jobs_wire as wire
from bridge_sim.aws.jobs_machine import (
    PENDING,
    ExecutionState,
    ExecutionStatus,
    abort_triggered,
    expire,
    process_details,
    retry,
    service_update,
)
from bridge_sim.aws.jobs_rollout import RolloutPacer, Schedule
from bridge_sim.aws.jobs_targets import target_things, thing_arn

if TYPE_CHECKING:
    from collections.abc import Callable


__all__ = ["JobsCore"]

log = get_logger("sim.aws.jobs")
Key = tuple[str, str]  # (job_id, thing_name), as moto keys job_executions


class RetriedExecution(FakeJobExecution):  # type: ignore[misc]  # moto is untyped
    """moto's execution with the `retryAttempt` AWS puts in every JobExecutionSummary
    (ListJobExecutionsForJob/ForThing), which moto leaves out."""

    def __init__(self, job_id: str, thing_arn: str) -> None:
        super().__init__(job_id, thing_arn)
        self.retry_attempt = 0

    def to_dict(self) -> dict[str, Any]:
        found: dict[str, Any] = super().to_dict()
        found["jobExecutionSummary"]["retryAttempt"] = self.retry_attempt
        return found


def naive_utc(epoch: float | None) -> datetime | None:
    """moto keeps naive UTC datetimes; convert an epoch to one."""
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC).replace(tzinfo=None)


@dataclass
class Rollout:
    """Things a job targets that have not been made available yet, and the pace to do so."""

    pacer: RolloutPacer
    schedule: Schedule = field(default_factory=Schedule)
    waiting: deque[str] = field(default_factory=deque)
    ended: bool = False


class JobsCore:
    """Execution states, rollout queues and the device-facing notifications they cause."""

    def __init__(
        self,
        backend: Callable[[], Any],
        publish: Callable[[str, bytes], None],
        clock: Callable[[], float],
    ) -> None:
        self._backend = backend
        self.clock = clock
        self._publish = publish
        self.states: dict[Key, ExecutionState] = {}
        # Indexes over `states`, so fleets of thousands stay linear.
        self.by_thing: dict[str, dict[str, ExecutionState]] = {}
        self.by_job: dict[str, dict[str, ExecutionState]] = {}
        self.counts: dict[str, Counter[ExecutionStatus]] = {}
        self.rollouts: dict[str, Rollout] = {}
        self._seen_pending: dict[str, tuple[tuple[str, int], ...]] = {}
        self._seen_next: dict[str, tuple[str, int] | None] = {}

    @property
    def iot(self) -> Any:
        """moto's IoTBackend, looked up on use: MotoServer.start() replaces it."""
        return self._backend()

    def publish(self, topic: str, payload: dict[str, Any]) -> None:
        self._publish(topic, wire.encode(payload))

    # -- registry lookups -------------------------------------------------------------

    def thing_arn(self, thing_name: str) -> str | None:
        return thing_arn(self.iot, thing_name)

    def target_things(self, targets: list[str]) -> list[str]:
        return target_things(self.iot, targets)

    def document(self, job_id: str) -> Any:
        """The job document as devices receive it: parsed JSON."""
        job = self.iot.jobs.get(job_id)
        if job is None or not job.document:
            return {}
        try:
            return json.loads(job.document)
        except ValueError:
            return job.document

    # -- executions -------------------------------------------------------------------

    def store(self, key: Key, state: ExecutionState) -> None:
        """Record a state and mirror it onto moto's FakeJobExecution."""
        self._uncount(key)
        self.counts.setdefault(key[0], Counter())[state.status] += 1
        self.states[key] = state
        self.by_thing.setdefault(key[1], {})[key[0]] = state
        self.by_job.setdefault(key[0], {})[key[1]] = state
        fake = self.iot.job_executions.get(key)
        if fake is None:
            return
        fake.status = str(state.status)
        fake.version_number = state.version_number
        fake.execution_number = state.execution_number
        fake.status_details_map = dict(state.status_details)
        fake.queued_at = naive_utc(state.queued_at)
        fake.started_at = naive_utc(state.started_at)
        fake.last_updated_at = naive_utc(state.last_updated_at or state.queued_at)
        fake.approximate_seconds_before_time_out = state.seconds_before_timeout(self.clock())
        if isinstance(fake, RetriedExecution):
            fake.retry_attempt = state.retry_attempt

    def _uncount(self, key: Key) -> None:
        previous = self.states.get(key)
        if previous is not None:
            self.counts[key[0]][previous.status] -= 1

    def create_execution(self, job_id: str, thing_name: str) -> None:
        thing_arn = self.thing_arn(thing_name)
        if thing_arn is None or (job_id, thing_name) in self.states:
            return
        now = self.clock()
        self.iot.job_executions[(job_id, thing_name)] = RetriedExecution(job_id, thing_arn)
        self.store((job_id, thing_name), ExecutionState(queued_at=now, last_updated_at=now))
        self.notify_thing(thing_name)

    def drop_execution(self, key: Key) -> None:
        self._uncount(key)
        self.states.pop(key, None)
        self.by_thing.get(key[1], {}).pop(key[0], None)
        self.by_job.get(key[0], {}).pop(key[1], None)
        self.iot.job_executions.pop(key, None)
        self.notify_thing(key[1])

    def end_execution(self, key: Key, status: ExecutionStatus, *, force: bool = True) -> None:
        """The service moves an execution to a terminal status and tells everyone."""
        state = service_update(self.states[key], status, now=self.clock(), force=force)
        self.execution_changed(key, state)

    def execution_changed(self, key: Key, state: ExecutionState) -> None:
        """Store a new state, publish its fleet event if terminal and notify the device."""
        job_id, thing_name = key
        self.store(key, state)
        if state.terminal:
            fake = self.iot.job_executions.get(key)
            thing_arn = fake.thing_arn if fake is not None else self.thing_arn(thing_name)
            event = wire.job_execution_event(job_id, thing_arn or "", state, now=self.clock())
            self.publish(f"$aws/events/jobExecution/{job_id}/{event['operation']}", event)
            rollout = self.rollouts.get(job_id)
            if rollout is not None and state.status is ExecutionStatus.SUCCEEDED:
                rollout.pacer.record_succeeded()
            self._retry(key, state)
        self.notify_thing(thing_name)

    def _retry(self, key: Key, ended: ExecutionState) -> None:
        """Queue the next attempt when jobExecutionsRetryConfig grants one."""
        job = self.iot.jobs.get(key[0])
        if job is None or job.status != "IN_PROGRESS":
            return
        criteria = (job.job_execution_retry_config or {}).get("criteriaList") or []
        attempt = retry(ended, criteria, now=self.clock())
        fake = self.iot.job_executions.get(key)
        if attempt is None or fake is None:
            return
        # moto keeps one execution per (job, thing): the new attempt replaces the old one.
        self.iot.job_executions[key] = RetriedExecution(key[0], fake.thing_arn)
        self.store(key, attempt)

    def pending(self, thing_name: str) -> list[tuple[str, ExecutionState]]:
        """The thing's pending executions: IN_PROGRESS first, each group oldest first."""
        found = [
            (job_id, state)
            for job_id, state in self.by_thing.get(thing_name, {}).items()
            if state.status in PENDING
        ]
        found.sort(key=lambda item: (item[1].status is not ExecutionStatus.IN_PROGRESS,))
        return found

    def notify_thing(self, thing_name: str) -> None:
        """Publish notify / notify-next when the thing's pending list or next job changed."""
        now = self.clock()
        pending = self.pending(thing_name)
        # AWS publishes notify when an execution joins or leaves the pending list.
        view = tuple(sorted((job_id, state.execution_number) for job_id, state in pending))
        if view != self._seen_pending.get(thing_name, ()):
            self._seen_pending[thing_name] = view
            jobs: dict[str, list[dict[str, Any]]] = {}
            for job_id, state in pending:
                jobs.setdefault(str(state.status), []).append(wire.execution_summary(job_id, state))
            notify = {"timestamp": int(now), "jobs": jobs}
            self.publish(f"$aws/things/{thing_name}/jobs/notify", notify)
        upcoming = (pending[0][0], pending[0][1].execution_number) if pending else None
        if upcoming != self._seen_next.get(thing_name):
            self._seen_next[thing_name] = upcoming
            body: dict[str, Any] = {"timestamp": int(now)}
            if pending:
                job_id, state = pending[0]
                body["execution"] = wire.execution_data(
                    job_id, thing_name, state, self.document(job_id), now=now
                )
            self.publish(f"$aws/things/{thing_name}/jobs/notify-next", body)

    # -- jobs -------------------------------------------------------------------------

    def status_counts(self, job_id: str) -> Counter[ExecutionStatus]:
        return self.counts.get(job_id, Counter())

    def roll_out(self, job_id: str) -> None:
        """Make as many waiting executions available as the rollout pace allows."""
        rollout = self.rollouts.get(job_id)
        job = self.iot.jobs.get(job_id)
        if rollout is None or job is None or job.status != "IN_PROGRESS":
            return
        count = min(rollout.pacer.quota(self.clock()), len(rollout.waiting))
        for _ in range(count):
            self.create_execution(job_id, rollout.waiting.popleft())
        if count:
            rollout.pacer.record_notified(count)

    def settle(self, job_id: str) -> None:
        """Refresh jobProcessDetails, then apply abort criteria and completion."""
        job = self.iot.jobs.get(job_id)
        if job is None:
            return
        counts = self.status_counts(job_id)
        if job.status == "IN_PROGRESS":
            criteria = (job.abort_config or {}).get("criteriaList") or []
            criterion = abort_triggered(criteria, counts)
            if criterion is not None:
                self.abort(job, criterion)
                return
            rollout = self.rollouts.get(job_id)
            waiting = rollout.waiting if rollout is not None else ()
            if (
                job.target_selection != "CONTINUOUS"
                and not waiting
                and not any(counts[status] for status in PENDING)
            ):
                self._complete(job)
                return
        self.refresh_details(job)

    def refresh_details(self, job: Any) -> None:
        details: dict[str, Any] = {"processingTargets": list(job.targets)}
        details.update(process_details(self.status_counts(job.job_id)))
        if details != job.job_process_details:
            job.job_process_details = details
            job.last_updated_at = naive_utc(self.clock())

    def cancel_executions(self, job_id: str, *, force: bool) -> None:
        """Cancel the job's QUEUED executions, and IN_PROGRESS ones too when forced."""
        rollout = self.rollouts.get(job_id)
        if rollout is not None:
            rollout.waiting.clear()
        for thing_name, state in list(self.by_job.get(job_id, {}).items()):
            if state.status is ExecutionStatus.QUEUED or (force and not state.terminal):
                self.end_execution((job_id, thing_name), ExecutionStatus.CANCELED)

    def abort(self, job: Any, criterion: Any) -> None:
        """abortConfig fired: cancel the job and every unfinished execution."""
        log.info("sim.aws.job_aborted", job_id=job.job_id, criterion=criterion)
        job.status = "CANCELED"
        job.reason_code = f"ABORTED_{criterion.get('failureType', 'ALL')}"
        job.comment = "Job was canceled because the abort criteria were met"
        self.cancel_executions(job.job_id, force=True)
        self.job_event("canceled", job)

    def _complete(self, job: Any) -> None:
        job.status = "COMPLETED"
        job.completed_at = naive_utc(self.clock())
        self.job_event("completed", job)

    def job_event(self, operation: str, job: Any) -> None:
        self.refresh_details(job)
        event = wire.job_event(operation, job, job.job_process_details, now=self.clock())
        self.publish(f"$aws/events/job/{job.job_id}/{operation}", event)

    def follow_schedule(self, job_id: str, rollout: Rollout, now: float) -> None:
        """Start a SCHEDULED job at its startTime; apply its endBehavior at endTime."""
        job = self.iot.jobs.get(job_id)
        schedule = rollout.schedule
        if job is None:
            return
        if job.status == "SCHEDULED" and schedule.start is not None and now >= schedule.start:
            job.status = "IN_PROGRESS"
        if job.status != "IN_PROGRESS" or rollout.ended:
            return
        if schedule.end is None or now < schedule.end:
            return
        rollout.ended = True
        rollout.waiting.clear()
        if schedule.end_behavior != "STOP_ROLLOUT":
            job.status = "CANCELED"
            job.force = schedule.end_behavior == "FORCE_CANCEL"
            self.cancel_executions(job_id, force=job.force)
            self.job_event("canceled", job)

    def tick(self) -> None:
        """Follow schedules, advance rollouts and time out executions whose timers ran out."""
        now = self.clock()
        for job_id, rollout in list(self.rollouts.items()):
            self.follow_schedule(job_id, rollout, now)
            self.roll_out(job_id)
            self.settle(job_id)
        touched: set[str] = set()
        for key, state in list(self.states.items()):
            timed_out = expire(state, now)
            if timed_out is not None:
                self.execution_changed(key, timed_out)
                touched.add(key[0])
        for job_id in touched:
            self.settle(job_id)
