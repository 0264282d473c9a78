"""Import/export jobs: their state, IoT Hub's one-active-job rule, and the background run.

A job is `enqueued` when created, `running` while it works, then `completed`, `failed`
(with `failureReason`) or `cancelled`. It runs as a task on the loop of whoever created it,
which is the REST server's. Only one import or export job may be enqueued or running per
hub; another is refused with 429 `ThrottlingMaxActiveJobCountExceeded`, the code Microsoft
documents for "the maximum active job count has been exceeded".
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bridge.logging import get_logger
from bridge_sim.iothub.errors import IoTHubError
from bridge_sim.iothub.identity import format_time
from bridge_sim.iothub.jobs_io import ContainerLocation, JobFailedError
from bridge_sim.iothub.jobs_run import run_export, run_import

if TYPE_CHECKING:
    from bridge_sim.iothub.registry import Registry

__all__ = ["ACTIVE_STATUSES", "ImportExportJob", "ImportExportJobs"]

_log = get_logger("sim.iothub.jobs")
ACTIVE_STATUSES = frozenset({"enqueued", "running"})
_DEFAULT_BLOB = "devices.txt"


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class ImportExportJob:
    """One job as `JobProperties` describes it, plus the task running it."""

    job_id: str
    type: str
    input_uri: str | None
    output_uri: str | None
    input_blob_name: str
    output_blob_name: str
    exclude_keys: bool
    storage_authentication_type: str
    start_time: dt.datetime = field(default_factory=_utcnow)
    status: str = "enqueued"
    progress: int = 0
    end_time: dt.datetime | None = None
    failure_reason: str | None = None
    task: asyncio.Task[None] | None = None

    @property
    def active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    def finish(self, status: str, reason: str | None = None) -> None:
        self.status, self.failure_reason, self.end_time = status, reason, _utcnow()
        if status == "completed":
            self.progress = 100

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "jobId": self.job_id,
            "type": self.type,
            "status": self.status,
            "progress": self.progress,
            "startTimeUtc": format_time(self.start_time),
            "inputBlobContainerUri": self.input_uri,
            "outputBlobContainerUri": self.output_uri,
            "inputBlobName": self.input_blob_name,
            "outputBlobName": self.output_blob_name,
            "excludeKeysInExport": self.exclude_keys,
            "storageAuthenticationType": self.storage_authentication_type,
        }
        if self.end_time is not None:
            body["endTimeUtc"] = format_time(self.end_time)
        if self.failure_reason is not None:
            body["failureReason"] = self.failure_reason
        return body


def _job_from_request(body: dict[str, Any]) -> ImportExportJob:
    kind = body.get("type")
    if kind not in {"import", "export"}:
        raise IoTHubError.argument_invalid(f"Job type must be 'import' or 'export', not {kind!r}")
    input_uri, output_uri = body.get("inputBlobContainerUri"), body.get("outputBlobContainerUri")
    if not isinstance(output_uri, str):
        raise IoTHubError.argument_invalid(f"An {kind} job needs outputBlobContainerUri")
    if kind == "import" and not isinstance(input_uri, str):
        raise IoTHubError.argument_invalid("An import job needs inputBlobContainerUri")
    authentication = body.get("storageAuthenticationType") or "keyBased"
    if authentication != "keyBased":
        # identityBased needs a managed identity the emulator cannot have.
        raise IoTHubError.argument_invalid(
            f"storageAuthenticationType '{authentication}' is not supported; use keyBased"
        )
    return ImportExportJob(
        job_id=str(uuid.uuid4()),
        type=kind,
        input_uri=input_uri if kind == "import" else None,
        output_uri=output_uri,
        input_blob_name=body.get("inputBlobName") or _DEFAULT_BLOB,
        output_blob_name=body.get("outputBlobName") or _DEFAULT_BLOB,
        exclude_keys=bool(body.get("excludeKeysInExport")),
        storage_authentication_type=authentication,
    )


class ImportExportJobs:
    """The hub's import/export jobs; `queue_delay` is how long a new job stays `enqueued`.

    IoT Hub queues a job for a while before it runs; tests raise `queue_delay` to hold a job
    in `enqueued` long enough to observe the one-active-job rule and cancellation.
    """

    def __init__(self, *, queue_delay: float = 0.0) -> None:
        self.queue_delay = queue_delay
        self._jobs: dict[str, ImportExportJob] = {}

    def create(self, body: dict[str, Any], registry: Registry) -> ImportExportJob:
        """Validate a `POST /jobs/create` body and start the job on the running loop."""
        job = _job_from_request(body)
        if any(existing.active for existing in self._jobs.values()):
            raise IoTHubError(
                429,
                "ThrottlingMaxActiveJobCountExceeded",
                "The maximum active job count has been exceeded: "
                "only one import or export job may be active at a time",
            )
        self._jobs[job.job_id] = job
        job.task = asyncio.get_running_loop().create_task(self._run(job, registry))
        _log.info("sim.iothub.job_created", job_id=job.job_id, type=job.type)
        return job

    def get(self, job_id: str) -> ImportExportJob:
        job = self._jobs.get(job_id)
        if job is None:
            raise IoTHubError(404, "JobNotFound", f"Job {job_id} not found")
        return job

    def jobs(self) -> list[ImportExportJob]:
        return list(self._jobs.values())

    def cancel(self, job_id: str) -> ImportExportJob:
        """Stop an active job (it ends `cancelled`); a finished one is left as it ended."""
        job = self.get(job_id)
        if job.active:
            job.finish("cancelled")
            if job.task is not None:
                job.task.cancel()
        return job

    async def close(self) -> None:
        """Cancel every active job and wait for their tasks; for server shutdown."""
        tasks = [job.task for job in self._jobs.values() if job.task is not None]
        for job in self._jobs.values():
            if job.active:
                job.finish("cancelled")
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _run(self, job: ImportExportJob, registry: Registry) -> None:
        def progress(fraction: float) -> None:
            # 100 means done; a job still writing its output is not.
            job.progress = min(99, int(fraction * 100))

        try:
            await asyncio.sleep(self.queue_delay)
            job.status = "running"
            if job.type == "import":
                failures = await run_import(
                    registry,
                    ContainerLocation.parse(job.input_uri, "input"),
                    ContainerLocation.parse(job.output_uri, "output"),
                    job.input_blob_name,
                    progress,
                )
                _log.info("sim.iothub.import_job_completed", job_id=job.job_id, failures=failures)
            else:
                lines = await run_export(
                    registry,
                    ContainerLocation.parse(job.output_uri, "output"),
                    job.output_blob_name,
                    job.exclude_keys,
                    progress,
                )
                _log.info("sim.iothub.export_job_completed", job_id=job.job_id, identities=lines)
        except JobFailedError as failure:
            _log.warning("sim.iothub.job_failed", job_id=job.job_id, reason=str(failure))
            job.finish("failed", str(failure))
        except asyncio.CancelledError:
            job.finish("cancelled")
            raise
        except Exception:
            _log.exception("sim.iothub.job_crashed", job_id=job.job_id)
            job.finish("failed", "Internal error in the emulator")
        else:
            job.finish("completed")
