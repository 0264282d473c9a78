"""The device side of AWS IoT Jobs over MQTT: get, start-next, {jobId}/get, {jobId}/update."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from bridge_sim.aws import jobs_wire as wire
from bridge_sim.aws.jobs_machine import ExecutionState, ExecutionStatus, JobsError, device_update

if TYPE_CHECKING:
    from bridge_sim.aws.jobs_core import JobsCore

__all__ = ["DeviceRequests"]

NEXT_JOB = "$next"


class DeviceRequests:
    """Answers one device request at a time; the caller holds the MotoServer lock."""

    def __init__(self, core: JobsCore) -> None:
        self.core = core
        self._answers: list[dict[str, Any]] | None = None  # set while serving HTTPS

    def call(self, request: wire.DeviceRequest, body: dict[str, Any]) -> dict[str, Any]:
        """Serve a request made over HTTPS (iot-jobs-data): the accepted answer, which is
        not published; raises JobsError where MQTT would reply on `/rejected`."""
        answers: list[dict[str, Any]] = []
        self._answers = answers
        try:
            self._dispatch(request, body)
        finally:
            self._answers = None
        return answers[0]

    def handle(self, request: wire.DeviceRequest, payload: bytes) -> None:
        now = self.core.clock()
        body: dict[str, Any] = {}
        try:
            body = _decode(payload)
            self._dispatch(request, body)
        except JobsError as error:
            state = None
            if error.code in {"VersionMismatch", "InvalidStateTransition"} and request.job_id:
                state = self.core.states.get((request.job_id, request.thing_name))
            token = body.get("clientToken")
            answer = wire.rejected(
                error.code, error.message, client_token=token, now=now, state=state
            )
            self.core.publish(request.reply_topic("rejected"), answer)

    def _dispatch(self, request: wire.DeviceRequest, body: dict[str, Any]) -> None:
        if request.operation == "get" and request.job_id is None:
            self._get_pending(request, body)
        elif request.operation == "start-next":
            self._start_next(request, body)
        elif request.operation == "get":
            self._describe(request, body)
        else:
            self._update(request, body)

    def _accept(self, request: wire.DeviceRequest, body: dict[str, Any], **fields: Any) -> None:
        answer = {**fields, "timestamp": int(self.core.clock())}
        if body.get("clientToken") is not None:
            answer["clientToken"] = body["clientToken"]
        if self._answers is not None:
            self._answers.append(answer)
            return
        self.core.publish(request.reply_topic("accepted"), answer)

    def _get_pending(self, request: wire.DeviceRequest, body: dict[str, Any]) -> None:
        pending = self.core.pending(request.thing_name)
        lists: dict[str, list[dict[str, Any]]] = {"inProgressJobs": [], "queuedJobs": []}
        for job_id, state in pending:
            name = "inProgressJobs" if state.status is ExecutionStatus.IN_PROGRESS else "queuedJobs"
            lists[name].append(wire.execution_summary(job_id, state))
        self._accept(request, body, **lists)

    def _execution(self, job_id: str, thing_name: str, state: ExecutionState) -> dict[str, Any]:
        document = self.core.document(job_id)
        return wire.execution_data(job_id, thing_name, state, document, now=self.core.clock())

    def _start_next(self, request: wire.DeviceRequest, body: dict[str, Any]) -> None:
        pending = self.core.pending(request.thing_name)
        if not pending:
            self._accept(request, body)
            return
        job_id, state = pending[0]
        key = (job_id, request.thing_name)
        if state.status is ExecutionStatus.QUEUED:
            state = device_update(
                state,
                ExecutionStatus.IN_PROGRESS,
                now=self.core.clock(),
                status_details=body.get("statusDetails"),
                step_timeout_minutes=body.get("stepTimeoutInMinutes"),
                in_progress_timeout_minutes=self._in_progress_timeout(job_id),
            )
            self.core.store(key, state)
        self._accept(request, body, execution=self._execution(job_id, request.thing_name, state))
        self.core.execution_changed(key, state)
        self.core.settle(job_id)

    def _lookup(
        self, request: wire.DeviceRequest, body: dict[str, Any]
    ) -> tuple[str, ExecutionState]:
        job_id = request.job_id or ""
        if job_id == NEXT_JOB:
            pending = self.core.pending(request.thing_name)
            if not pending:
                raise JobsError("ResourceNotFound", "No pending job execution for this thing")
            return pending[0]
        state = self.core.states.get((job_id, request.thing_name))
        number = body.get("executionNumber")
        if state is None or (number is not None and number != state.execution_number):
            raise JobsError(
                "ResourceNotFound", f"Job execution {job_id} for {request.thing_name} not found"
            )
        return job_id, state

    def _describe(self, request: wire.DeviceRequest, body: dict[str, Any]) -> None:
        job_id, state = self._lookup(request, body)
        execution = self._execution(job_id, request.thing_name, state)
        if body.get("includeJobDocument") is False:
            execution.pop("jobDocument", None)
        self._accept(request, body, execution=execution)

    def _update(self, request: wire.DeviceRequest, body: dict[str, Any]) -> None:
        if not isinstance(body.get("status"), str):
            raise JobsError("InvalidRequest", "status is required")
        job_id, state = self._lookup(request, body)
        new_state = device_update(
            state,
            body["status"],
            now=self.core.clock(),
            expected_version=body.get("expectedVersion"),
            status_details=body.get("statusDetails"),
            step_timeout_minutes=body.get("stepTimeoutInMinutes"),
            in_progress_timeout_minutes=self._in_progress_timeout(job_id),
        )
        key = (job_id, request.thing_name)
        self.core.store(key, new_state)
        fields: dict[str, Any] = {}
        if body.get("includeJobExecutionState"):
            fields["executionState"] = wire.execution_state(new_state)
        if body.get("includeJobDocument"):
            fields["jobDocument"] = self.core.document(job_id)
        self._accept(request, body, **fields)
        self.core.execution_changed(key, new_state)
        self.core.settle(job_id)
        self.core.roll_out(job_id)

    def _in_progress_timeout(self, job_id: str) -> float | None:
        job = self.core.iot.jobs.get(job_id)
        config = (job.timeout_config if job is not None else None) or {}
        minutes = config.get("inProgressTimeoutInMinutes")
        return float(minutes) if minutes else None


def _decode(payload: bytes) -> dict[str, Any]:
    """The request body; raises JobsError with AWS's code for what cannot be read."""
    if len(payload) > wire.MAX_PAYLOAD_BYTES:
        raise JobsError("InvalidRequest", "The request payload is too large")
    if not payload.strip():
        return {}
    try:
        body = json.loads(payload)
    except ValueError:
        raise JobsError("InvalidJson", "The request is not valid UTF-8 encoded JSON") from None
    if not isinstance(body, dict):
        raise JobsError("InvalidRequest", "The request must be a JSON object")
    return body
