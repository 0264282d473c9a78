"""Routes for device and module identities and the bulk registry operation."""

from __future__ import annotations

from aiohttp import web

from bridge_sim.iothub.bulk import apply_bulk, validate_bulk
from bridge_sim.iothub.quotas import Operation
from bridge_sim.iothub.rest_base import (
    charge,
    hub,
    if_match,
    json_response,
    read_json,
    read_object,
    requires,
)

__all__ = ["routes"]

routes = web.RouteTableDef()
_READ, _WRITE = "RegistryRead", "RegistryWrite"
# `GET /devices?top=` treats anything outside 1..1000 as 1000, as IoT Hub documents.
_MAX_TOP = 1000


@routes.get("/devices")
@requires(_READ)
async def list_devices(request: web.Request) -> web.Response:
    charge(request, Operation.IDENTITY_REGISTRY)
    try:
        top = int(request.query.get("top", _MAX_TOP))
    except ValueError:
        top = _MAX_TOP
    if not 1 <= top <= _MAX_TOP:
        top = _MAX_TOP
    return json_response([d.identity_json() for d in hub(request).registry.devices(top)])


@routes.post("/devices")
@requires(_WRITE)
async def bulk_registry(request: web.Request) -> web.Response:
    entries = validate_bulk(await read_json(request))
    # Bulk counts one identity operation per device against the quota.
    charge(request, Operation.IDENTITY_REGISTRY, max(1, len(entries)))
    result = apply_bulk(hub(request).registry, entries)
    return json_response(result.to_json(), status=200 if result.successful else 400)


@routes.get("/statistics/devices")
@requires(_READ)
async def device_statistics(request: web.Request) -> web.Response:
    counts = hub(request).registry.statistics()
    counts.pop("connectedDeviceCount")
    return json_response(counts)


@routes.get("/statistics/service")
@requires("ServiceConnect", _READ)
async def service_statistics(request: web.Request) -> web.Response:
    counts = hub(request).registry.statistics()
    return json_response({"connectedDeviceCount": counts["connectedDeviceCount"]})


@routes.get("/devices/{device_id}")
@requires(_READ)
async def get_device(request: web.Request) -> web.Response:
    charge(request, Operation.IDENTITY_REGISTRY)
    device = hub(request).registry.identity(request.match_info["device_id"])
    return json_response(device.identity_json(), etag=device.etag)


@routes.put("/devices/{device_id}")
@requires(_WRITE)
async def put_device(request: web.Request) -> web.Response:
    body = await read_object(request)
    charge(request, Operation.IDENTITY_REGISTRY)
    device = hub(request).registry.put_device(
        request.match_info["device_id"], body, if_match(request)
    )
    return json_response(device.identity_json(), etag=device.etag)


@routes.delete("/devices/{device_id}")
@requires(_WRITE)
async def delete_device(request: web.Request) -> web.Response:
    charge(request, Operation.IDENTITY_REGISTRY)
    hub(request).registry.delete_device(request.match_info["device_id"], if_match(request))
    return web.Response(status=204)


@routes.get("/devices/{device_id}/modules")
@requires(_READ)
async def list_modules(request: web.Request) -> web.Response:
    charge(request, Operation.IDENTITY_REGISTRY)
    modules = hub(request).registry.modules(request.match_info["device_id"])
    return json_response([module.identity_json() for module in modules])


@routes.get("/devices/{device_id}/modules/{module_id}")
@requires(_READ)
async def get_module(request: web.Request) -> web.Response:
    charge(request, Operation.IDENTITY_REGISTRY)
    module = hub(request).registry.identity(
        request.match_info["device_id"], request.match_info["module_id"]
    )
    return json_response(module.identity_json(), etag=module.etag)


@routes.put("/devices/{device_id}/modules/{module_id}")
@requires(_WRITE)
async def put_module(request: web.Request) -> web.Response:
    body = await read_object(request)
    charge(request, Operation.IDENTITY_REGISTRY)
    module = hub(request).registry.put_module(
        request.match_info["device_id"], request.match_info["module_id"], body, if_match(request)
    )
    return json_response(module.identity_json(), etag=module.etag)


@routes.delete("/devices/{device_id}/modules/{module_id}")
@requires(_WRITE)
async def delete_module(request: web.Request) -> web.Response:
    charge(request, Operation.IDENTITY_REGISTRY)
    hub(request).registry.delete_module(
        request.match_info["device_id"], request.match_info["module_id"], if_match(request)
    )
    return web.Response(status=204)
