"""Routes for twins, module twins, queries and direct methods."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from bridge_sim.iothub.errors import IoTHubError
from bridge_sim.iothub.query import QueryError, parse_query
from bridge_sim.iothub.query_pages import QueryPages
from bridge_sim.iothub.quotas import Operation
from bridge_sim.iothub.rest_base import (
    charge,
    hub,
    if_match,
    json_response,
    read_object,
    requires,
)

__all__ = ["routes"]

routes = web.RouteTableDef()
_SERVICE, _READ = "ServiceConnect", "RegistryRead"
_DEFAULT_PAGE, _MAX_PAGE = 100, 100
_METHOD_TIMEOUT_RANGE = (5, 300)


def _ids(request: web.Request) -> tuple[str, str | None]:
    return request.match_info["device_id"], request.match_info.get("module_id")


def _twin_response(twin: dict[str, Any]) -> web.Response:
    return json_response(twin, etag=twin["etag"])


@routes.post("/devices/query")
@requires(_SERVICE, _READ)
async def query_twins(request: web.Request) -> web.Response:
    body = await read_object(request)
    text = body.get("query")
    if not isinstance(text, str):
        raise IoTHubError(400, "BadRequest", "The body needs a 'query' string")
    charge(request, Operation.QUERY)
    try:
        query = parse_query(text)
    except QueryError as error:
        raise IoTHubError(400, "BadRequest", f"Query parse error: {error}") from error
    context = hub(request)
    snapshot, start = QueryPages.parse(request.headers.get("x-ms-continuation"))
    rows = context.query_pages.rows(snapshot) if snapshot else None
    if snapshot is None or rows is None:
        # Off the event loop: a query reads every twin, and other requests must go on.
        rows = await asyncio.to_thread(context.registry.query, query)
        snapshot = context.query_pages.keep(rows)
    page_size = _page_size(request.headers.get("x-ms-max-item-count"))
    page = rows[start : start + page_size]
    headers = {"x-ms-item-type": "JSON" if query.projects else "Twin"}
    if start + page_size < len(rows):
        headers["x-ms-continuation"] = QueryPages.token(snapshot, start + page_size)
    return web.json_response(page, headers=headers)


def _page_size(header: str | None) -> int:
    try:
        size = int(header) if header else _DEFAULT_PAGE
    except ValueError:
        size = _DEFAULT_PAGE
    return size if 1 <= size <= _MAX_PAGE else _MAX_PAGE


@routes.get("/twins/{device_id}")
@routes.get("/twins/{device_id}/modules/{module_id}")
@requires(_SERVICE, _READ)
async def get_twin(request: web.Request) -> web.Response:
    charge(request, Operation.TWIN_READ)
    device_id, module_id = _ids(request)
    return _twin_response(hub(request).registry.twin(device_id, module_id))


@routes.patch("/twins/{device_id}")
@routes.patch("/twins/{device_id}/modules/{module_id}")
@requires(_SERVICE)
async def update_twin(request: web.Request) -> web.Response:
    body = await read_object(request)
    charge(request, Operation.TWIN_UPDATE)
    device_id, module_id = _ids(request)
    twin = hub(request).registry.update_twin(device_id, body, if_match(request), module_id)
    return _twin_response(twin)


@routes.put("/twins/{device_id}")
@routes.put("/twins/{device_id}/modules/{module_id}")
@requires(_SERVICE)
async def replace_twin(request: web.Request) -> web.Response:
    body = await read_object(request)
    charge(request, Operation.TWIN_UPDATE)
    device_id, module_id = _ids(request)
    twin = hub(request).registry.replace_twin(device_id, body, if_match(request), module_id)
    return _twin_response(twin)


@routes.post("/twins/{device_id}/methods")
@routes.post("/twins/{device_id}/modules/{module_id}/methods")
@requires(_SERVICE)
async def invoke_method(request: web.Request) -> web.Response:
    body = await read_object(request)
    device_id, module_id = _ids(request)
    if not isinstance(body.get("methodName"), str) or not body["methodName"]:
        raise IoTHubError.argument_invalid("methodName is required")
    timeout = body.get("responseTimeoutInSeconds") or 30
    low, high = _METHOD_TIMEOUT_RANGE
    if not isinstance(timeout, int) or not low <= timeout <= high:
        raise IoTHubError.argument_invalid(f"responseTimeoutInSeconds must be {low} to {high}")
    context = hub(request)
    identity = context.registry.identity(device_id, module_id)
    if context.method_invoker is None or not identity.connected:
        raise IoTHubError(
            404, "DeviceNotOnline", f"Timed out waiting for device {device_id} to connect"
        )
    try:
        async with asyncio.timeout(timeout):
            status, payload = await context.method_invoker(device_id, module_id, body)
    except TimeoutError as error:
        raise IoTHubError(
            504, "GatewayTimeoutException", f"Timed out waiting for the response from {device_id}"
        ) from error
    return json_response({"status": status, "payload": payload})
