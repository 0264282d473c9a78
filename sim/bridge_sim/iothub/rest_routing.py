"""The control API's routing routes under `/_emulator/routing` (never SAS-checked).

- `PUT /_emulator/routing` with a plan's `landing-zone.auto.tfvars.json` (or any object with
  its `routes` and `endpoints` lists; optional `"fallback": false`): use these routes from
  now on. A route IoT Hub would refuse (a condition that does not parse, an unknown endpoint)
  is refused with 400 `ArgumentInvalid` and the reason; nothing changes then.
- `GET /_emulator/routing`: the routes, endpoints and fallback in use, and messages
  delivered per endpoint.
- `POST /_emulator/routing/flush`: write what storage endpoints hold back, answer 204.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from bridge_sim.iothub.errors import IoTHubError
from bridge_sim.iothub.rest_base import hub, json_response, read_object
from bridge_sim.iothub.routing import MessageRouter, RoutingConfig, RoutingConfigError

__all__ = ["routes"]

routes = web.RouteTableDef()


def _router(request: web.Request) -> MessageRouter:
    router: Any = hub(request).routing
    if not isinstance(router, MessageRouter):
        raise IoTHubError(404, "NotFound", "This emulator routes no messages")
    return router


@routes.put("/_emulator/routing")
async def put_routing(request: web.Request) -> web.Response:
    router = _router(request)
    body = await read_object(request)
    fallback = body.get("fallback", True)
    if not isinstance(fallback, bool):
        raise IoTHubError.argument_invalid("'fallback' must be true or false")
    try:
        await router.configure(RoutingConfig.from_tfvars(body, fallback=fallback))
    except RoutingConfigError as error:
        raise IoTHubError.argument_invalid(str(error)) from error
    return json_response(router.config.to_json())


@routes.get("/_emulator/routing")
async def get_routing(request: web.Request) -> web.Response:
    router = _router(request)
    return json_response({**router.config.to_json(), "delivered": dict(router.delivered)})


@routes.post("/_emulator/routing/flush")
async def flush_routing(request: web.Request) -> web.Response:
    await _router(request).flush()
    return web.Response(status=204)
