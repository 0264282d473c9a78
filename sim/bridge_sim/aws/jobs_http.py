"""The IoT Jobs data-plane HTTPS API (boto3 `iot-jobs-data`), which moto does not have.

Four operations, the same as the device MQTT API and served by the same code
(`DeviceRequests.call`), so an execution started over HTTPS notifies over MQTT:

    GET  /things/{thingName}/jobs             GetPendingJobExecutions
    PUT  /things/{thingName}/jobs/$next       StartNextPendingJobExecution
    GET  /things/{thingName}/jobs/{jobId}     DescribeJobExecution (`$next` allowed)
    POST /things/{thingName}/jobs/{jobId}     UpdateJobExecution

The shapes differ from MQTT where the service model says so: `jobDocument` is a JSON
string, there is no `timestamp` or `clientToken`, and errors are REST exceptions
(`x-amzn-ErrorType`, HTTP status) instead of `/rejected` codes.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote

from bridge_sim.aws import jobs_wire as wire
from bridge_sim.aws.jobs_machine import JobsError

if TYPE_CHECKING:
    from bridge_sim.aws.jobs_device import DeviceRequests

__all__ = ["JobsDataApi"]

# MQTT error code -> (REST exception, HTTP status), from the iot-jobs-data service model.
_ERRORS = {
    "InvalidTopic": ("InvalidRequestException", 400),
    "InvalidJson": ("InvalidRequestException", 400),
    "InvalidRequest": ("InvalidRequestException", 400),
    "ResourceNotFound": ("ResourceNotFoundException", 404),
    "InvalidStateTransition": ("InvalidStateTransitionException", 409),
    "VersionMismatch": ("InvalidStateTransitionException", 409),
    "TerminalStateReached": ("TerminalStateException", 410),
    "RequestThrottled": ("ThrottlingException", 429),
}
_STATUS_TEXT = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed"}


def _rest_execution(execution: dict[str, Any]) -> dict[str, Any]:
    if "jobDocument" in execution:
        execution = {**execution, "jobDocument": json.dumps(execution["jobDocument"])}
    return execution


class JobsDataApi:
    """A WSGI app for requests SigV4-signed for `iot-jobs-data`."""

    SIGNING_NAME = "iot-jobs-data"

    def __init__(self, lock: threading.RLock, devices: DeviceRequests) -> None:
        self._lock = lock
        self._devices = devices

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        try:
            status, body = self._serve(environ)
        except JobsError as error:
            kind, status = _ERRORS.get(error.code, ("ServiceUnavailableException", 503))
            return _respond(start_response, status, {"message": error.message}, kind)
        return _respond(start_response, status, body)

    def _serve(self, environ: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        method = environ.get("REQUEST_METHOD", "GET")
        parts = unquote(environ.get("PATH_INFO", "")).strip("/").split("/")
        query = {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
        raw = environ["wsgi.input"].read()
        if len(parts) not in (3, 4) or parts[0] != "things" or parts[2] != "jobs":
            raise JobsError("InvalidRequest", "Unknown operation")
        thing = parts[1]
        job_id = parts[3] if len(parts) == 4 else None
        body = self._body(raw)
        if job_id is None and method == "GET":
            request = wire.DeviceRequest(thing, "get")
        elif job_id == "$next" and method == "PUT":
            request = wire.DeviceRequest(thing, "start-next")
        elif job_id is not None and method == "GET":
            request = wire.DeviceRequest(thing, "get", job_id)
            body = {"includeJobDocument": query.get("includeJobDocument", "true") != "false"}
            if "executionNumber" in query:
                body["executionNumber"] = self._number(query["executionNumber"])
        elif job_id is not None and method == "POST":
            request = wire.DeviceRequest(thing, "update", job_id)
        else:
            raise JobsError("InvalidRequest", "Unknown operation")
        body.pop("clientToken", None)  # not part of the HTTPS API
        with self._lock:
            answer = self._devices.call(request, body)
        answer.pop("timestamp", None)
        if "execution" in answer:
            answer["execution"] = _rest_execution(answer["execution"])
        if "jobDocument" in answer:
            answer["jobDocument"] = json.dumps(answer["jobDocument"])
        return 200, answer

    @staticmethod
    def _body(raw: bytes) -> dict[str, Any]:
        if not raw.strip():
            return {}
        try:
            body = json.loads(raw)
        except ValueError:
            raise JobsError("InvalidRequest", "The request body is not valid JSON") from None
        if not isinstance(body, dict):
            raise JobsError("InvalidRequest", "The request body must be a JSON object")
        return body

    @staticmethod
    def _number(text: str) -> int:
        try:
            return int(text)
        except ValueError:
            raise JobsError("InvalidRequest", "executionNumber must be a number") from None


def _respond(
    start_response: Callable[..., Any],
    status: int,
    body: dict[str, Any],
    error_type: str | None = None,
) -> list[bytes]:
    payload = json.dumps(body).encode()
    headers = [
        ("Content-Type", "application/json"),
        ("Content-Length", str(len(payload))),
        ("x-amzn-RequestId", str(uuid.uuid4())),
    ]
    if error_type is not None:
        headers.append(("x-amzn-ErrorType", error_type))
    start_response(f"{status} {_STATUS_TEXT.get(status, 'Error')}", headers)
    return [payload]
