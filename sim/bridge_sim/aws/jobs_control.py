"""Hooks on moto's IoT control plane that give its stored jobs AWS's behaviour."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from moto.iot.exceptions import (
    InvalidRequestException,
    InvalidStateTransitionException,
    ResourceAlreadyExistsException,
    ResourceNotFoundException,
)

from bridge.logging import get_logger
from bridge_sim.aws.jobs_core import JobsCore, Rollout, naive_utc
from bridge_sim.aws.jobs_machine import RETRY_FAILURE_TYPES, ExecutionStatus
from bridge_sim.aws.jobs_rollout import RolloutPacer, parse_schedule
from bridge_sim.aws.jobs_targets import resource_name

if TYPE_CHECKING:
    from collections.abc import Callable

    from bridge_sim.aws.hooks import BackendHooks, Call

__all__ = ["ControlPlaneHooks"]

log = get_logger("sim.aws.jobs")

MAX_DOCUMENT_BYTES = 32 * 1024
MAX_ROLLOUT_PER_MINUTE = 1000
MAX_RETRY_CRITERIA = 2
MAX_RETRIES = 10


class ControlPlaneHooks:
    """Validates and completes moto's job calls; registered with `install`."""

    def __init__(self, core: JobsCore) -> None:
        self.core = core

    def install(self, hooks: BackendHooks) -> None:
        hooks.before("create_job", self.validate_create_job)
        hooks.after("create_job", _logged(self.start_job))
        hooks.before("cancel_job", self.validate_cancel_job)
        hooks.after("cancel_job", _logged(self.cancel_job))
        hooks.before("delete_job", self.validate_delete_job)
        hooks.after("delete_job", _logged(self.delete_job))
        hooks.before("describe_job_execution", self.refresh_execution)
        hooks.before("cancel_job_execution", self.validate_cancel_execution)
        hooks.after("cancel_job_execution", _logged(self.cancel_execution))
        hooks.before("delete_job_execution", self.validate_delete_execution)
        hooks.after("delete_job_execution", _logged(self.delete_execution))
        hooks.after("add_thing_to_thing_group", _logged(self.thing_joined_group))
        hooks.after("remove_thing_from_thing_group", _logged(self.thing_left_group))

    # -- jobs -------------------------------------------------------------------------

    def validate_create_job(self, call: Call) -> None:
        args = call.arguments
        iot = self.core.iot
        if args["job_id"] in iot.jobs:
            job = iot.jobs[args["job_id"]]
            raise ResourceAlreadyExistsException("Job already exists", job.job_id, job.job_arn)
        document = args.get("document")
        if document is None and args.get("document_source") is None:
            raise InvalidRequestException("Either document or documentSource must be specified")
        if document is not None:
            if len(document.encode()) > MAX_DOCUMENT_BYTES:
                raise InvalidRequestException(
                    f"The job document exceeds the maximum size of {MAX_DOCUMENT_BYTES} bytes"
                )
            try:
                json.loads(document)
            except ValueError:
                raise InvalidRequestException("The job document is not valid JSON") from None
        targets = args.get("targets") or []
        if not targets:
            raise InvalidRequestException("At least one target is required")
        for arn in targets:
            self._check_target(arn)
        rollout = args.get("job_executions_rollout_config") or {}
        rate = rollout.get("maximumPerMinute")
        if rate is not None and not 1 <= rate <= MAX_ROLLOUT_PER_MINUTE:
            raise InvalidRequestException("maximumPerMinute must be between 1 and 1000")
        if rollout.get("exponentialRate") and rate is None:
            raise InvalidRequestException("exponentialRate requires maximumPerMinute")
        _check_retry_config(args.get("job_execution_retry_config"))
        try:
            parse_schedule(args.get("scheduling_config"))
        except ValueError as error:
            raise InvalidRequestException(f"Invalid schedulingConfig: {error}") from None

    def _check_target(self, arn: str) -> None:
        name = resource_name(arn)
        if ":thinggroup/" in arn:
            groups = self.core.iot.thing_groups.values()
            if not any(group.thing_group_name == name for group in groups):
                raise ResourceNotFoundException(f"Thing group {name} does not exist")
        elif ":thing/" in arn:
            if self.core.thing_arn(name) is None:
                raise ResourceNotFoundException(f"Thing {name} does not exist")
        else:
            raise InvalidRequestException(f"Invalid target ARN {arn}")

    def start_job(self, call: Call) -> None:
        core = self.core
        job_id = call.arguments["job_id"]
        job = core.iot.jobs[job_id]
        job.status = "IN_PROGRESS"
        job.created_at = naive_utc(core.clock())
        job.target_selection = job.target_selection or "SNAPSHOT"
        # moto created every execution at once; the rollout creates them at its own pace.
        for key in [key for key in core.iot.job_executions if key[0] == job_id]:
            del core.iot.job_executions[key]
        now = core.clock()
        schedule = parse_schedule(job.scheduling_config)
        if schedule.start is not None and schedule.start > now:
            job.status = "SCHEDULED"
        pacer = RolloutPacer(job.job_executions_rollout_config, start=now)
        rollout = Rollout(pacer, schedule)
        rollout.waiting.extend(core.target_things(job.targets))
        core.rollouts[job_id] = rollout
        core.roll_out(job_id)
        core.settle(job_id)

    def validate_cancel_job(self, call: Call) -> None:
        job = self.core.iot.jobs.get(call.arguments["job_id"])
        if job is None:
            raise ResourceNotFoundException
        if job.status == "COMPLETED":
            raise InvalidStateTransitionException("A completed job cannot be canceled")
        call.context["was_canceled"] = job.status == "CANCELED"

    def cancel_job(self, call: Call) -> None:
        job_id = call.arguments["job_id"]
        self.core.cancel_executions(job_id, force=bool(call.arguments.get("force")))
        job = self.core.iot.jobs[job_id]
        if call.context["was_canceled"]:
            self.core.refresh_details(job)
            return
        self.core.job_event("cancellation_in_progress", job)
        self.core.job_event("canceled", job)

    def validate_delete_job(self, call: Call) -> None:
        job = self.core.iot.jobs.get(call.arguments["job_id"])
        if job is None:
            raise ResourceNotFoundException
        call.context["job"] = job

    def delete_job(self, call: Call) -> None:
        core = self.core
        job = call.context["job"]
        core.job_event("deletion_in_progress", job)
        core.rollouts.pop(job.job_id, None)
        for thing_name in list(core.by_job.get(job.job_id, {})):
            core.drop_execution((job.job_id, thing_name))
        core.by_job.pop(job.job_id, None)
        core.counts.pop(job.job_id, None)
        for key in [key for key in core.iot.job_executions if key[0] == job.job_id]:
            del core.iot.job_executions[key]
        core.job_event("deleted", job)

    # -- executions -------------------------------------------------------------------

    def _known(self, call: Call) -> tuple[str, str]:
        key = (call.arguments["job_id"], call.arguments["thing_name"])
        if key not in self.core.states:
            raise ResourceNotFoundException
        return key

    def refresh_execution(self, call: Call) -> None:
        key = (call.arguments["job_id"], call.arguments["thing_name"])
        if key in self.core.states:
            self.core.store(key, self.core.states[key])

    def validate_cancel_execution(self, call: Call) -> None:
        key = self._known(call)
        if self.core.states[key].terminal:
            raise InvalidStateTransitionException("The job execution is already terminal")

    def cancel_execution(self, call: Call) -> None:
        key = self._known(call)
        self.core.end_execution(key, ExecutionStatus.CANCELED)
        self.core.settle(key[0])

    def validate_delete_execution(self, call: Call) -> None:
        key = self._known(call)
        if not self.core.states[key].terminal and not call.arguments.get("force"):
            raise InvalidStateTransitionException(
                "Only a terminal job execution can be deleted without force"
            )

    def delete_execution(self, call: Call) -> None:
        key = (call.arguments["job_id"], call.arguments["thing_name"])
        self.core.drop_execution(key)
        self.core.settle(key[0])

    # -- continuous jobs --------------------------------------------------------------

    def _continuous_jobs(self) -> list[Any]:
        return [
            job
            for job in self.core.iot.jobs.values()
            if job.target_selection == "CONTINUOUS" and job.status == "IN_PROGRESS"
        ]

    def _thing_name(self, call: Call) -> str:
        args = call.arguments
        thing = self.core.iot._identify_thing(args.get("thing_name"), args.get("thing_arn"))
        return str(thing.thing_name)

    def thing_joined_group(self, call: Call) -> None:
        thing_name = self._thing_name(call)
        for job in self._continuous_jobs():
            rollout = self.core.rollouts.get(job.job_id)
            if (
                rollout is None
                or (job.job_id, thing_name) in self.core.states
                or thing_name in rollout.waiting
                or thing_name not in self.core.target_things(job.targets)
            ):
                continue
            rollout.waiting.append(thing_name)
            self.core.roll_out(job.job_id)
            self.core.settle(job.job_id)

    def thing_left_group(self, call: Call) -> None:
        thing_name = self._thing_name(call)
        for job in self._continuous_jobs():
            if thing_name in self.core.target_things(job.targets):
                continue
            rollout = self.core.rollouts.get(job.job_id)
            if rollout is not None and thing_name in rollout.waiting:
                rollout.waiting.remove(thing_name)
            state = self.core.states.get((job.job_id, thing_name))
            if state is not None and not state.terminal:
                self.core.end_execution((job.job_id, thing_name), ExecutionStatus.REMOVED)
                self.core.settle(job.job_id)


def _check_retry_config(config: dict[str, Any] | None) -> None:
    """Refuse a jobExecutionsRetryConfig AWS refuses: 1 or 2 criteria, each a failure type
    AWS retries (FAILED, TIMED_OUT or ALL) with 0 to 10 retries."""
    if config is None:
        return
    criteria = config.get("criteriaList")
    if not isinstance(criteria, list) or not 1 <= len(criteria) <= MAX_RETRY_CRITERIA:
        raise InvalidRequestException("jobExecutionsRetryConfig needs 1 or 2 criteria")
    for criterion in criteria:
        if criterion.get("failureType") not in RETRY_FAILURE_TYPES:
            raise InvalidRequestException(
                f"Invalid failureType {criterion.get('failureType')!r} in retry criteria"
            )
        retries = criterion.get("numberOfRetries")
        if not isinstance(retries, int) or not 0 <= retries <= MAX_RETRIES:
            raise InvalidRequestException("numberOfRetries must be between 0 and 10")


def _logged(callback: Callable[[Call], None]) -> Callable[[Call], None]:
    """An after-hook that logs its failure: moto already did the call, so let it answer."""

    def guarded(call: Call) -> None:
        try:
            callback(call)
        except Exception:
            log.exception("sim.aws.jobs_hook_failed", method=call.method)

    return guarded
