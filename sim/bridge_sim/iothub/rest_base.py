"""What every route module of the service REST API shares: context, JSON, errors, quotas."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiohttp import web

from bridge_sim.iothub.configurations import Configurations
from bridge_sim.iothub.errors import IoTHubError
from bridge_sim.iothub.eventhub.log import EventLog
from bridge_sim.iothub.faults import FaultInjector, RequestStats
from bridge_sim.iothub.jobs import ImportExportJobs
from bridge_sim.iothub.query_pages import QueryPages
from bridge_sim.iothub.quotas import Operation, Quotas
from bridge_sim.iothub.registry import Registry
from bridge_sim.iothub.scheduled_jobs import ScheduledJobs

__all__ = [
    "HUB",
    "RIGHTS_ATTRIBUTE",
    "Handler",
    "HubContext",
    "MethodInvoker",
    "charge",
    "error_body",
    "error_response",
    "hub",
    "if_match",
    "json_response",
    "read_json",
    "read_object",
    "requires",
]

# invoke(device_id, module_id, request body) -> (status the device answered, payload).
MethodInvoker = Callable[[str, str | None, dict[str, Any]], Awaitable[tuple[int, Any]]]


class ConnectionDropper(Protocol):
    """What the control API needs of the device endpoint."""

    def drop(self, device_id: str, module_id: str | None = None) -> bool: ...

    def drop_all(self) -> int: ...


@dataclass
class HubContext:
    """The state behind one REST application; swap `quotas` or `method_invoker` at will."""

    registry: Registry
    quotas: Quotas = field(default_factory=lambda: Quotas(None))
    faults: FaultInjector = field(default_factory=FaultInjector)
    stats: RequestStats = field(default_factory=RequestStats)
    method_invoker: MethodInvoker | None = None
    jobs: ImportExportJobs = field(default_factory=ImportExportJobs)
    query_pages: QueryPages = field(default_factory=QueryPages)
    # Set by the assembled emulator, for the control API's telemetry and fault routes.
    events: EventLog | None = None
    devices: ConnectionDropper | None = None
    # The emulator's `routing.MessageRouter`, for `/_emulator/routing`.
    routing: object | None = None
    configurations: Configurations = field(init=False)
    scheduled_jobs: ScheduledJobs = field(init=False)

    def __post_init__(self) -> None:
        self.configurations = Configurations(self.registry)
        self.scheduled_jobs = ScheduledJobs(self.registry, lambda: self.method_invoker)


HUB = web.AppKey("iothub", HubContext)


def hub(request: web.Request) -> HubContext:
    return request.app[HUB]


def error_body(code: str, message: str) -> dict[str, str]:
    """IoT Hub's error body: the SDKs read the code from `Message` or the header."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    return {
        "Message": f"ErrorCode:{code};{message}",
        "ExceptionMessage": f"Tracking ID:{uuid.uuid4().hex}-G:0-TimeStamp:{stamp}",
    }


def error_response(error: IoTHubError) -> web.Response:
    return web.json_response(
        error_body(error.code, error.message),
        status=error.status,
        headers={"iothub-errorcode": error.code},
    )


def json_response(body: Any, *, status: int = 200, etag: str | None = None) -> web.Response:
    headers = {"ETag": f'"{etag}"'} if etag else None
    return web.json_response(body, status=status, headers=headers)


async def read_json(request: web.Request) -> Any:
    """The request body as JSON; 400 when it is not."""
    text = await request.text()
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise IoTHubError(400, "BadRequest", f"Malformed JSON body: {error}") from error


async def read_object(request: web.Request) -> dict[str, Any]:
    body = await read_json(request)
    if not isinstance(body, dict):
        raise IoTHubError(400, "BadRequest", "The request body must be a JSON object")
    return body


def if_match(request: web.Request) -> str | None:
    return request.headers.get("If-Match")


def charge(request: web.Request, operation: Operation, cost: float = 1.0) -> None:
    """Spend quota for `operation`; 429 ThrottlingException when the bucket is empty."""
    if not hub(request).quotas.try_acquire(operation, cost):
        raise IoTHubError(
            429,
            "ThrottlingException",
            f"Throttling: the {operation.value} quota of the hub's tier is exhausted",
        )


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
RIGHTS_ATTRIBUTE = "iothub_rights"


def requires(*rights: str) -> Callable[[Handler], Handler]:
    """Mark a handler with the policy rights that grant it (any one of them suffices)."""

    def mark(handler: Handler) -> Handler:
        setattr(handler, RIGHTS_ATTRIBUTE, frozenset(rights))
        return handler

    return mark
