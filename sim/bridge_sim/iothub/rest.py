"""The service REST API of the emulated hub as an aiohttp application.

Middleware, outermost first: count the request, turn every failure into IoT Hub's error
body plus the `iothub-errorcode` header, apply injected faults and latency, then check the
`SharedAccessSignature` header against the hub's shared access policies. Routes live in
`rest_identities`, `rest_twins`, `rest_jobs`, `rest_configurations` and (unauthenticated)
`rest_control`.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from aiohttp import web

from bridge.logging import get_logger
from bridge_sim.iothub import (
    rest_configurations,
    rest_control,
    rest_identities,
    rest_jobs,
    rest_routing,
    rest_twins,
)
from bridge_sim.iothub.errors import IoTHubError
from bridge_sim.iothub.rest_base import (
    HUB,
    RIGHTS_ATTRIBUTE,
    Handler,
    HubContext,
    error_body,
    error_response,
    hub,
)
from bridge_sim.iothub.sas import SasError, parse_token, verify_token

if TYPE_CHECKING:
    from bridge_sim.iothub.policies import SharedAccessPolicy

__all__ = ["ENDPOINT", "create_app"]

ENDPOINT = "rest"
_log = get_logger("sim.iothub.rest")
_HTTP_CODES = {404: "NotFound", 405: "MethodNotAllowed", 413: "RequestEntityTooLarge"}


def _route_label(request: web.Request) -> str:
    info = request.match_info
    route = getattr(info, "route", None)
    resource = getattr(route, "resource", None)
    return resource.canonical if resource is not None else "unmatched"


@web.middleware
async def count_requests(request: web.Request, handler: Handler) -> web.StreamResponse:
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    finally:
        hub(request).stats.record(ENDPOINT, request.method, _route_label(request), status)


@web.middleware
async def iothub_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except IoTHubError as error:
        return error_response(error)
    except web.HTTPException as error:
        if error.status < 400:
            raise
        code = _HTTP_CODES.get(error.status, "BadRequest")
        headers = {"iothub-errorcode": code}
        if isinstance(error, web.HTTPMethodNotAllowed):
            headers["Allow"] = ", ".join(sorted(error.allowed_methods))
        return web.json_response(
            error_body(code, error.reason), status=error.status, headers=headers
        )
    except Exception:
        _log.exception("sim.iothub.request_failed", path=request.path)
        return error_response(IoTHubError(500, "ServerError", "Internal error in the emulator"))


def _is_control(request: web.Request) -> bool:
    return request.path.startswith(rest_control.CONTROL_PREFIX)


@web.middleware
async def inject_faults(request: web.Request, handler: Handler) -> web.StreamResponse:
    if _is_control(request):
        return await handler(request)
    faults = hub(request).faults
    delay = faults.delay_for(ENDPOINT)
    if delay > 0:
        await asyncio.sleep(delay)
    rule = faults.check(ENDPOINT, request.path)
    if rule is not None:
        raise IoTHubError(rule.status, rule.code, f"Injected fault {rule.id}")
    return await handler(request)


def _verified_policy(request: web.Request, header: str) -> SharedAccessPolicy:
    registry = hub(request).registry
    token = parse_token(header)
    policy = registry.policies.get(token.key_name or "")
    if policy is None:
        raise SasError(f"unknown policy {token.key_name!r}")
    # The SDK signs for the HostName it dialled, which is the Host header.
    hosts = {request.host.lower(), registry.host_name.lower()}
    if token.resource.lower().rstrip("/") not in hosts:
        raise SasError(f"token is for {token.resource!r}")
    verify_token(token, policy.keys)
    return policy


def _authorize(request: web.Request) -> None:
    header = request.headers.get("Authorization")
    if not header:
        raise IoTHubError(401, "IotHubUnauthorizedAccess", "Missing Authorization header")
    try:
        policy = _verified_policy(request, header)
    except SasError as error:
        raise IoTHubError(401, "IotHubUnauthorizedAccess", f"Unauthorized: {error}") from error
    wanted: frozenset[str] = getattr(request.match_info.handler, RIGHTS_ATTRIBUTE, frozenset())
    if wanted and not wanted & policy.rights:
        raise IoTHubError(
            401,
            "IotHubUnauthorizedAccess",
            f"Policy '{policy.name}' lacks {' or '.join(sorted(wanted))}",
        )


@web.middleware
async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
    route = getattr(request.match_info, "route", None)
    if not _is_control(request) and getattr(route, "resource", None) is not None:
        _authorize(request)
        if "api-version" not in request.query:
            raise IoTHubError(400, "BadRequest", "The api-version query parameter is required")
    return await handler(request)


def create_app(context: HubContext) -> web.Application:
    """Build the application over `context`: registry, quotas, faults, stats, method seam."""
    app = web.Application(
        middlewares=[count_requests, iothub_errors, inject_faults, authenticate],
        client_max_size=4 * 1024 * 1024,
    )
    app[HUB] = context
    # Query first: `/devices/{device_id}` would otherwise claim `/devices/query`.
    app.add_routes(rest_twins.routes)
    app.add_routes(rest_identities.routes)
    app.add_routes(rest_jobs.routes)
    app.add_routes(rest_configurations.routes)
    app.add_routes(rest_control.routes)
    app.add_routes(rest_routing.routes)
    app.on_cleanup.append(rest_jobs.stop_jobs)
    return app
