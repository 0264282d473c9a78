"""Routes for IoT Hub's import/export jobs and scheduled device jobs (`IoTHubJobManager`).

Every call, reads included, is one operation against the hub's jobs quota.
"""

from __future__ import annotations

from aiohttp import web

from bridge_sim.iothub.quotas import Operation
from bridge_sim.iothub.rest_base import (
    HUB,
    charge,
    hub,
    json_response,
    read_object,
    requires,
)

__all__ = ["routes", "stop_jobs"]

routes = web.RouteTableDef()
_READ, _WRITE = "RegistryRead", "RegistryWrite"


@routes.post("/jobs/create")
@requires(_WRITE)
async def create_job(request: web.Request) -> web.Response:
    body = await read_object(request)
    charge(request, Operation.JOBS)
    context = hub(request)
    return json_response(context.jobs.create(body, context.registry).to_json())


@routes.get("/jobs")
@requires(_READ)
async def list_jobs(request: web.Request) -> web.Response:
    charge(request, Operation.JOBS)
    return json_response([job.to_json() for job in hub(request).jobs.jobs()])


# Scheduled device jobs (`/jobs/v2`); the query route comes before `/jobs/v2/{job_id}`.
@routes.get("/jobs/v2/query")
@requires(_READ)
async def query_scheduled_jobs(request: web.Request) -> web.Response:
    charge(request, Operation.JOBS)
    jobs = hub(request).scheduled_jobs.query(
        request.query.get("jobType"), request.query.get("jobStatus")
    )
    return json_response({"type": "jobResponse", "items": [job.to_json() for job in jobs]})


@routes.put("/jobs/v2/{job_id}")
@requires(_WRITE)
async def create_scheduled_job(request: web.Request) -> web.Response:
    body = await read_object(request)
    charge(request, Operation.JOBS)
    job = hub(request).scheduled_jobs.create(request.match_info["job_id"], body)
    return json_response(job.to_json())


@routes.get("/jobs/v2/{job_id}")
@requires(_READ)
async def get_scheduled_job(request: web.Request) -> web.Response:
    charge(request, Operation.JOBS)
    return json_response(hub(request).scheduled_jobs.get(request.match_info["job_id"]).to_json())


@routes.post("/jobs/v2/{job_id}/cancel")
@requires(_WRITE)
async def cancel_scheduled_job(request: web.Request) -> web.Response:
    charge(request, Operation.JOBS)
    job = hub(request).scheduled_jobs.cancel(request.match_info["job_id"])
    return json_response(job.to_json())


@routes.get("/jobs/{job_id}")
@requires(_READ)
async def get_job(request: web.Request) -> web.Response:
    charge(request, Operation.JOBS)
    return json_response(hub(request).jobs.get(request.match_info["job_id"]).to_json())


@routes.delete("/jobs/{job_id}")
@requires(_WRITE)
async def cancel_job(request: web.Request) -> web.Response:
    charge(request, Operation.JOBS)
    return json_response(hub(request).jobs.cancel(request.match_info["job_id"]).to_json())


async def stop_jobs(app: web.Application) -> None:
    """Cancel running jobs when the server shuts down, so no task outlives its loop."""
    await app[HUB].jobs.close()
    await app[HUB].scheduled_jobs.close()
