"""Import jobs: a whole fleet's identities and twins in one `devices.txt` blob.

IoT Hub runs one import or export job at a time per hub and refuses another with 429
`ThrottlingMaxActiveJobCountExceeded`; that is a busy slot, not a rate, so `import_devices`
waits for the slot (polling every `poll_interval`) instead of backing off. Job calls spend
the jobs budget; the identities an import writes do not count against the identity
registry throttle (Microsoft's quotas page), which is why large fleets go this way.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob.aio import ContainerClient

from bridge.azure.identities import segment
from bridge.azure.models import DeviceIdentity, DeviceImport, ImportMode
from bridge.azure.quotas import Operation
from bridge.errors import HubThrottled
from bridge.logging import get_logger

if TYPE_CHECKING:
    from collections.abc import Iterable

    from bridge.azure.transport import HubTransport

__all__ = ["IMPORT_ERRORS_BLOB", "ImportJobResult", "import_devices"]

IMPORT_ERRORS_BLOB = "importErrors.log"
_FINISHED = frozenset({"completed", "failed", "cancelled"})
_SLOT_TAKEN = "ThrottlingMaxActiveJobCountExceeded"
_log = get_logger("azure.jobs")


@dataclass(frozen=True)
class ImportJobResult:
    """How an import job ended, with the lines of `importErrors.log` (one per failed entry)."""

    job_id: str
    status: str
    failure_reason: str | None
    errors: tuple[dict[str, Any], ...]

    @property
    def succeeded(self) -> bool:
        """The job completed and no entry failed."""
        return self.status == "completed" and not self.errors


def _lines(devices: Iterable[DeviceIdentity | DeviceImport], mode: ImportMode) -> bytes:
    entries = (d if isinstance(d, DeviceImport) else DeviceImport(d) for d in devices)
    return "\n".join(json.dumps(entry.to_json(mode)) for entry in entries).encode()


async def _create_job(
    transport: HubTransport, body: dict[str, Any], poll_interval: float
) -> dict[str, Any]:
    while True:
        try:
            response = await transport.call("POST", "/jobs/create", Operation.JOBS, body=body)
        except HubThrottled as error:
            if error.code != _SLOT_TAKEN:
                raise
            _log.info("azure.import_waiting_for_job_slot", delay=poll_interval)
            await asyncio.sleep(poll_interval)
            continue
        job: dict[str, Any] = response.body
        return job


async def _read_errors(output_uri: str) -> tuple[dict[str, Any], ...]:
    async with ContainerClient.from_container_url(output_uri) as container:
        try:
            stream = await container.download_blob(IMPORT_ERRORS_BLOB)
        except ResourceNotFoundError:
            return ()
        text = (await stream.readall()).decode("utf-8", errors="replace")
    return tuple(json.loads(line) for line in text.splitlines() if line.strip())


async def import_devices(
    transport: HubTransport,
    devices: Iterable[DeviceIdentity | DeviceImport],
    *,
    container_sas_uri: str,
    output_container_sas_uri: str | None = None,
    mode: ImportMode = "createOrUpdate",
    blob_name: str = "devices.txt",
    poll_interval: float = 1.0,
) -> ImportJobResult:
    """Write `devices` to `blob_name`, run an import job on it, wait for it to finish.

    The SAS URIs need read, write and list rights on their containers. Bound the wait with
    `asyncio.timeout` around the call: a large import takes minutes.
    """
    output_uri = output_container_sas_uri or container_sas_uri
    async with ContainerClient.from_container_url(container_sas_uri) as container:
        await container.upload_blob(blob_name, _lines(devices, mode), overwrite=True)
    body = {
        "type": "import",
        "inputBlobContainerUri": container_sas_uri,
        "outputBlobContainerUri": output_uri,
        "inputBlobName": blob_name,
        "storageAuthenticationType": "keyBased",
    }
    job = await _create_job(transport, body, poll_interval)
    job_id = str(job["jobId"])
    _log.info("azure.import_job_created", job_id=job_id)
    while job.get("status") not in _FINISHED:
        await asyncio.sleep(poll_interval)
        job = (await transport.call("GET", f"/jobs/{segment(job_id)}", Operation.JOBS)).body
    errors = await _read_errors(output_uri) if job["status"] == "completed" else ()
    _log.info("azure.import_job_finished", job_id=job_id, status=job["status"], errors=len(errors))
    return ImportJobResult(job_id, job["status"], job.get("failureReason"), errors)
