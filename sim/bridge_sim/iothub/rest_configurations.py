"""Routes for automatic device management configurations (`IoTHubConfigurationManager`)."""

from __future__ import annotations

from aiohttp import web

from bridge_sim.iothub.errors import IoTHubError
from bridge_sim.iothub.rest_base import hub, if_match, json_response, read_object, requires

__all__ = ["routes"]

routes = web.RouteTableDef()
_READ, _WRITE = "RegistryRead", "RegistryWrite"


@routes.get("/configurations")
@requires(_READ)
async def list_configurations(request: web.Request) -> web.Response:
    top = request.query.get("top")
    try:
        count = int(top) if top else None
    except ValueError as error:
        raise IoTHubError(400, "ArgumentInvalid", "top must be a number") from error
    return json_response(hub(request).configurations.all(count))


# Before `/configurations/{id}`, which would otherwise take "testQueries" as an id.
@routes.post("/configurations/testQueries")
@requires(_READ)
async def test_queries(request: web.Request) -> web.Response:
    body = await read_object(request)
    return json_response(hub(request).configurations.test_queries(body))


@routes.get("/configurations/{configuration_id}")
@requires(_READ)
async def get_configuration(request: web.Request) -> web.Response:
    document = hub(request).configurations.get(request.match_info["configuration_id"])
    return json_response(document, etag=document["etag"])


@routes.put("/configurations/{configuration_id}")
@requires(_WRITE)
async def put_configuration(request: web.Request) -> web.Response:
    body = await read_object(request)
    configurations = hub(request).configurations
    document = configurations.put(request.match_info["configuration_id"], body, if_match(request))
    return json_response(document, etag=document["etag"])


@routes.delete("/configurations/{configuration_id}")
@requires(_WRITE)
async def delete_configuration(request: web.Request) -> web.Response:
    hub(request).configurations.delete(request.match_info["configuration_id"], if_match(request))
    return web.Response(status=204)
