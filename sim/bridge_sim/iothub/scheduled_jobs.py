"""Scheduled device jobs (`IoTHubJobManager.create_scheduled_job` and friends, `/jobs/v2`).

`PUT /jobs/v2/{id}` schedules a `scheduleUpdateTwin` (tags and desired properties merged
into every twin its `queryCondition` selects) or `scheduleDeviceMethod` (a direct method
invoked on each) at `startTime`; `GET /jobs/v2/{id}` reads it, `POST /jobs/v2/{id}/cancel`
cancels it, `GET /jobs/v2/query?jobType=&jobStatus=` lists them as a query result. As on
IoT Hub a job goes `queued` -> `running` -> `completed` (or `cancelled`, or `failed` when
`maxExecutionTimeInSeconds` runs out), and `deviceJobStatistics` count the devices. A
device that does not answer its method (offline, or over the response timeout) counts as
failed; the job still completes. Jobs run on the REST server's loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bridge_sim.iothub.errors import IoTHubError
from bridge_sim.iothub.identity import format_time
from bridge_sim.iothub.query import QueryError, parse_query

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from bridge_sim.iothub.registry import Registry

    MethodInvoker = Callable[[str, str | None, dict[str, Any]], Awaitable[tuple[int, Any]]]

__all__ = ["ScheduledJobs"]

_TYPES = ("scheduleUpdateTwin", "scheduleDeviceMethod")
_ACTIVE = frozenset({"queued", "scheduled", "running"})


@dataclass
class ScheduledJob:
    request: dict[str, Any]
    created: dt.datetime
    start: dt.datetime
    status: str = "queued"
    end: dt.datetime | None = None
    failure_reason: str | None = None
    statistics: dict[str, int] = field(
        default_factory=lambda: {
            "deviceCount": 0,
            "failedCount": 0,
            "succeededCount": 0,
            "runningCount": 0,
            "pendingCount": 0,
        }
    )
    task: asyncio.Task[None] | None = None

    def to_json(self) -> dict[str, Any]:
        body = {
            "jobId": self.request["jobId"],
            "queryCondition": self.request.get("queryCondition"),
            "createdTime": format_time(self.created),
            "startTime": format_time(self.start),
            "maxExecutionTimeInSeconds": self.request.get("maxExecutionTimeInSeconds"),
            "type": self.request["type"],
            "status": self.status,
            "deviceJobStatistics": dict(self.statistics),
        }
        for name in ("cloudToDeviceMethod", "updateTwin"):
            if self.request.get(name) is not None:
                body[name] = self.request[name]
        if self.end is not None:
            body["endTime"] = format_time(self.end)
        if self.failure_reason is not None:
            body["failureReason"] = self.failure_reason
        return body


def _start_time(value: Any) -> dt.datetime:
    if value is None:
        return dt.datetime.now(dt.UTC)
    try:
        moment = dt.datetime.fromisoformat(str(value))
    except ValueError as error:
        raise IoTHubError.argument_invalid(f"startTime {value!r} is not a date") from error
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


class ScheduledJobs:
    """The hub's scheduled jobs; `invoker()` reaches connected devices for method jobs."""

    def __init__(self, registry: Registry, invoker: Callable[[], MethodInvoker | None]) -> None:
        self._registry = registry
        self._invoker = invoker  # read at each call: the emulator sets it after start-up
        self._jobs: dict[str, ScheduledJob] = {}

    def create(self, job_id: str, body: dict[str, Any]) -> ScheduledJob:
        if body.get("jobId") not in {None, job_id}:
            raise IoTHubError.argument_invalid("The body's jobId is not the one in the URL")
        job_type = body.get("type")
        if job_type not in _TYPES:
            raise IoTHubError.argument_invalid(f"type must be one of {', '.join(_TYPES)}")
        if job_type == "scheduleDeviceMethod" and not (
            isinstance(body.get("cloudToDeviceMethod"), dict)
            and body["cloudToDeviceMethod"].get("methodName")
        ):
            raise IoTHubError.argument_invalid("cloudToDeviceMethod.methodName is required")
        if job_type == "scheduleUpdateTwin" and not isinstance(body.get("updateTwin"), dict):
            raise IoTHubError.argument_invalid("updateTwin is required")
        condition = body.get("queryCondition")
        if not isinstance(condition, str) or not condition.strip():
            raise IoTHubError.argument_invalid("queryCondition is required")
        try:
            parse_query(f"SELECT * FROM devices WHERE {condition}")  # noqa: S608 - no database
        except QueryError as error:
            raise IoTHubError.argument_invalid(f"queryCondition: {error}") from error
        if job_id in self._jobs:
            raise IoTHubError(409, "JobAlreadyExists", f"Job {job_id} already exists")
        job = ScheduledJob(
            request={**body, "jobId": job_id},
            created=dt.datetime.now(dt.UTC),
            start=_start_time(body.get("startTime")),
        )
        self._jobs[job_id] = job
        job.task = asyncio.get_running_loop().create_task(self._run(job))
        return job

    def get(self, job_id: str) -> ScheduledJob:
        job = self._jobs.get(job_id)
        if job is None:
            raise IoTHubError(404, "JobNotFound", f"Job {job_id} does not exist")
        return job

    def cancel(self, job_id: str) -> ScheduledJob:
        job = self.get(job_id)
        if job.status in _ACTIVE:
            if job.task is not None:
                job.task.cancel()
            job.status = "cancelled"
            job.end = dt.datetime.now(dt.UTC)
        return job

    def query(self, job_type: str | None, status: str | None) -> list[ScheduledJob]:
        return [
            job
            for job in self._jobs.values()
            if job_type in {None, job.request["type"]} and status in {None, job.status}
        ]

    async def close(self) -> None:
        tasks = [job.task for job in self._jobs.values() if job.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def reset(self) -> None:
        for job in self._jobs.values():
            if job.task is not None:
                job.task.cancel()
        self._jobs.clear()

    async def _run(self, job: ScheduledJob) -> None:
        delay = (job.start - dt.datetime.now(dt.UTC)).total_seconds()
        if delay > 0:
            job.status = "scheduled"
            await asyncio.sleep(delay)
        job.status = "running"
        condition = job.request["queryCondition"]
        rows = await asyncio.to_thread(
            self._registry.query,
            f"SELECT * FROM devices WHERE {condition}",  # noqa: S608 - IoT Hub query text
        )
        devices = [row["deviceId"] for row in rows]
        stats = job.statistics
        stats.update(deviceCount=len(devices), pendingCount=len(devices))
        limit = job.request.get("maxExecutionTimeInSeconds") or 3600
        try:
            async with asyncio.timeout(limit):
                for device_id in devices:
                    stats["pendingCount"] -= 1
                    stats["runningCount"] += 1
                    succeeded = await self._run_on(job, device_id)
                    stats["runningCount"] -= 1
                    stats["succeededCount" if succeeded else "failedCount"] += 1
        except TimeoutError:
            job.status = "failed"
            job.failure_reason = "The job ran out of its maxExecutionTimeInSeconds"
        else:
            job.status = "completed"
        job.end = dt.datetime.now(dt.UTC)

    async def _run_on(self, job: ScheduledJob, device_id: str) -> bool:
        if job.request["type"] == "scheduleUpdateTwin":
            twin = job.request["updateTwin"]
            patch = {
                "tags": twin.get("tags"),
                "properties": {"desired": (twin.get("properties") or {}).get("desired")},
            }
            try:
                await asyncio.to_thread(self._registry.update_twin, device_id, patch, None)
            except IoTHubError:
                return False
            return True
        method = job.request["cloudToDeviceMethod"]
        identity = self._registry.find(device_id)
        invoker = self._invoker()
        if invoker is None or identity is None or not identity.connected:
            return False
        timeout = method.get("responseTimeoutInSeconds") or 30
        with contextlib.suppress(TimeoutError, IoTHubError):
            async with asyncio.timeout(timeout):
                status, _ = await invoker(device_id, None, method)
            return 200 <= status < 300
        return False
