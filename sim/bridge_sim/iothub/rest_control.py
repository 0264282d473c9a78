"""The emulator's control API under `/_emulator/`: for tests and rehearsals, never SAS-checked.

- `POST /_emulator/reset`: forget identities and twins, fault rules and request counts.
- `POST /_emulator/faults` `{"status": 503, "count": 2}` or `{"status": 429, "fraction": 0.5}`,
  optional `code`, `endpoint` (`rest`, or another endpoint's name), `routePrefix`: add a
  rule; answers the rule with its `id`. `GET` lists rules, `DELETE` clears them and latency.
- `PUT /_emulator/latency` `{"seconds": 0.2, "endpoint": "rest"}`: delay matching requests.
- `GET /_emulator/stats`: request counts by endpoint, method, route and status.
- `PUT /_emulator/quotas` `{"tier": "S1", "units": 1}` (`tier` null disables throttling).
- `GET /_emulator/telemetry?deviceId=d1&limit=100`: the newest captured device-to-cloud
  messages (body as text, properties, annotations), oldest first.
- `POST /_emulator/connections/drop` `{"deviceId": "d1", "moduleId": null}` cuts one
  device connection without a word; `{}` cuts them all. Answers `{"dropped": n}`.
- `/_emulator/routing`: routes and custom endpoints, in `rest_routing`.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from bridge_sim.iothub.errors import IoTHubError
from bridge_sim.iothub.eventhub.log import StoredEvent
from bridge_sim.iothub.faults import FaultRule
from bridge_sim.iothub.rest_base import hub, json_response, read_object

__all__ = ["CONTROL_PREFIX", "routes"]

CONTROL_PREFIX = "/_emulator/"
routes = web.RouteTableDef()


def _field(body: dict[str, Any], name: str, kind: type | tuple[type, ...], default: Any) -> Any:
    value = body.get(name, default)
    if value is not default and not isinstance(value, kind):
        raise IoTHubError.argument_invalid(f"'{name}' has the wrong type")
    return value


@routes.post("/_emulator/reset")
async def reset(request: web.Request) -> web.Response:
    context = hub(request)
    context.registry.reset()
    context.configurations.reset()
    context.scheduled_jobs.reset()
    context.faults.clear()
    context.stats.clear()
    context.quotas.reconfigure(context.quotas.tier, context.quotas.units)
    return web.Response(status=204)


@routes.post("/_emulator/faults")
async def add_fault(request: web.Request) -> web.Response:
    body = await read_object(request)
    try:
        rule = FaultRule(
            status=_field(body, "status", int, 503),
            code=_field(body, "code", str, ""),
            count=_field(body, "count", int, None),
            fraction=float(_field(body, "fraction", (int, float), 1.0)),
            endpoint=_field(body, "endpoint", str, None),
            route_prefix=_field(body, "routePrefix", str, None),
        )
    except ValueError as error:
        raise IoTHubError.argument_invalid(str(error)) from error
    return json_response(hub(request).faults.add(rule).to_json(), status=201)


@routes.get("/_emulator/faults")
async def list_faults(request: web.Request) -> web.Response:
    faults = hub(request).faults
    return json_response(
        {"latency": faults.latency, "rules": [rule.to_json() for rule in faults.rules]}
    )


@routes.delete("/_emulator/faults")
async def clear_faults(request: web.Request) -> web.Response:
    hub(request).faults.clear()
    return web.Response(status=204)


@routes.put("/_emulator/latency")
async def set_latency(request: web.Request) -> web.Response:
    body = await read_object(request)
    seconds = float(_field(body, "seconds", (int, float), 0.0))
    if seconds < 0:
        raise IoTHubError.argument_invalid("seconds must not be negative")
    faults = hub(request).faults
    faults.latency, faults.latency_endpoint = seconds, _field(body, "endpoint", str, None)
    return web.Response(status=204)


@routes.get("/_emulator/stats")
async def stats(request: web.Request) -> web.Response:
    return json_response({"requests": hub(request).stats.to_json()})


@routes.put("/_emulator/quotas")
async def set_quotas(request: web.Request) -> web.Response:
    body = await read_object(request)
    tier = _field(body, "tier", str, None)
    if tier not in {None, "F1", "S1", "S2", "S3"}:
        raise IoTHubError.argument_invalid(f"Unknown tier '{tier}'")
    units = _field(body, "units", int, 1)
    if units < 1:
        raise IoTHubError.argument_invalid("units must be at least 1")
    hub(request).quotas.reconfigure(tier, units)
    return web.Response(status=204)


def _event_json(event: StoredEvent) -> dict[str, Any]:
    return {
        "deviceId": event.device_id,
        "moduleId": event.module_id,
        "partition": event.partition,
        "sequenceNumber": event.sequence_number,
        "enqueuedTimeMs": event.enqueued_time_ms,
        "messageSource": event.message_source,
        "properties": dict(event.properties),
        "messageId": event.message_id,
        "contentType": event.content_type,
        "body": event.body.decode("utf-8", errors="replace"),
    }


@routes.get("/_emulator/telemetry")
async def telemetry(request: web.Request) -> web.Response:
    events = hub(request).events
    if events is None:
        raise IoTHubError(404, "NotFound", "This emulator keeps no event log")
    device = request.query.get("deviceId")
    try:
        limit = max(1, min(int(request.query.get("limit", "100")), 10_000))
    except ValueError as error:
        raise IoTHubError.argument_invalid("'limit' must be a number") from error
    found: list[StoredEvent] = [
        e
        for e in events.retained()
        if e.message_source == "Telemetry" and (device is None or e.device_id == device)
    ]
    found.sort(key=lambda e: (e.enqueued_time_ms, e.partition, e.sequence_number))
    return json_response([_event_json(e) for e in found[-limit:]])


@routes.post("/_emulator/connections/drop")
async def drop_connections(request: web.Request) -> web.Response:
    devices = hub(request).devices
    if devices is None:
        raise IoTHubError(404, "NotFound", "This emulator serves no device endpoint")
    body = await read_object(request)
    device = _field(body, "deviceId", str, None)
    module = _field(body, "moduleId", str, None)
    dropped = int(devices.drop(device, module)) if device else devices.drop_all()
    return json_response({"dropped": dropped})
