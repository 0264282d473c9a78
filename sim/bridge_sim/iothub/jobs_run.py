"""What an import or export job does with the registry and its blobs.

Import reads `ExportImportDevice` lines and applies each with the bulk API's own
`check_entry` / `apply_entry`, so a line behaves exactly as that entry would in
`POST /devices`; each line that fails becomes one line of `importErrors.log`, which is
written (empty when nothing failed) to the output container, as IoT Hub does. Export writes
every device and module identity with its twin, one JSON object per line.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

from bridge_sim.iothub.bulk import apply_entry, check_entry
from bridge_sim.iothub.errors import IoTHubError
from bridge_sim.iothub.jobs_io import BlockWriter, ContainerLocation, read_lines, storage_errors

if TYPE_CHECKING:
    from collections.abc import Callable

    from bridge_sim.iothub.identity import Identity
    from bridge_sim.iothub.registry import Registry

__all__ = ["IMPORT_ERRORS_BLOB", "export_entries", "import_line", "run_export", "run_import"]

IMPORT_ERRORS_BLOB = "importErrors.log"
# Let the server's loop answer requests between slices of a long job.
_SLICE = 200
# importErrors.log carries IoT Hub's numeric error codes, as the service writes them.
_NUMERIC_CODES = {
    "ArgumentInvalid": 400004,
    "IotHubFormatError": 400006,
    "DeviceDefinedMultipleTimes": 400011,
    "DeserializationError": 400012,
    "IotHubQuotaExceeded": 403002,
    "DeviceNotFound": 404001,
    "ModuleNotFound": 404010,
    "DeviceAlreadyExists": 409001,
    "ModuleAlreadyExistsOnDevice": 409301,
    "PreconditionFailed": 412001,
    "TooManyDevices": 413002,
    "ThrottlingException": 429001,
    "ServerError": 500001,
}


def _numeric_code(error: IoTHubError) -> int:
    return _NUMERIC_CODES.get(error.code, error.status * 1000)


def import_line(registry: Registry, line: bytes) -> dict[str, Any] | None:
    """Apply one line of `devices.txt`; the `importErrors.log` record when it fails."""
    text = line.decode("utf-8", errors="replace").strip()
    if not text:
        return None
    try:
        entry = json.loads(text)
    except json.JSONDecodeError as error:
        return {
            "errorCode": _NUMERIC_CODES["DeserializationError"],
            "errorStatus": f"Invalid device format in line: {text}. {error}",
        }
    try:
        apply_entry(registry, check_entry(entry))
    except IoTHubError as error:
        record: dict[str, Any] = {"errorCode": _numeric_code(error), "errorStatus": error.message}
        if isinstance(entry, dict) and isinstance(entry.get("id"), str):
            record["deviceId"] = entry["id"]
            if entry.get("moduleId") is not None:
                record["moduleId"] = entry["moduleId"]
        return record
    return None


async def run_import(
    registry: Registry,
    source: ContainerLocation,
    target: ContainerLocation,
    blob_name: str,
    progress: Callable[[float], None],
) -> int:
    """Import `blob_name` from `source`, log failures to `target`; the number of failures."""
    async with source.client() as input_container, target.client() as output_container:
        # Prove the output container writable before changing the registry.
        async with storage_errors(f"writing {IMPORT_ERRORS_BLOB}"):
            await BlockWriter(output_container, IMPORT_ERRORS_BLOB).close()
        failures: list[str] = []
        async with storage_errors(f"reading {blob_name}"):
            count = 0
            async for line, fraction in read_lines(input_container, blob_name):
                failure = import_line(registry, line)
                if failure is not None:
                    failures.append(json.dumps(failure))
                count += 1
                if count % _SLICE == 0:
                    progress(fraction)
                    await asyncio.sleep(0)
        async with storage_errors(f"writing {IMPORT_ERRORS_BLOB}"):
            writer = BlockWriter(output_container, IMPORT_ERRORS_BLOB)
            for failure_line in failures:
                await writer.write(failure_line)
            await writer.close()
    return len(failures)


def _export_entry(registry: Registry, identity: Identity, exclude_keys: bool) -> dict[str, Any]:
    body = identity.identity_json()
    twin = registry.twin(identity.device_id, identity.module_id)
    authentication = body["authentication"]
    if exclude_keys:
        authentication["symmetricKey"] = {"primaryKey": None, "secondaryKey": None}
    entry: dict[str, Any] = {"id": identity.device_id}
    if identity.module_id is not None:
        entry |= {"moduleId": identity.module_id, "managedBy": body.get("managedBy")}
    entry |= {"eTag": body["etag"], "authentication": authentication}
    if identity.module_id is None:
        entry |= {
            key: body[key]
            for key in ("status", "statusReason", "capabilities", "deviceScope", "parentScopes")
        }
    return entry | {
        "twinETag": twin["etag"],
        "tags": twin["tags"],
        "properties": twin["properties"],
    }


def export_entries(registry: Registry, device: Identity, exclude_keys: bool) -> list[str]:
    """The export lines of a device and its modules; none if it was deleted meanwhile."""
    try:
        identities = [device, *registry.modules(device.device_id)]
        return [json.dumps(_export_entry(registry, i, exclude_keys)) for i in identities]
    except IoTHubError:
        return []


async def run_export(
    registry: Registry,
    target: ContainerLocation,
    blob_name: str,
    exclude_keys: bool,
    progress: Callable[[float], None],
) -> int:
    """Write every identity with its twin to `blob_name` in `target`; the lines written."""
    devices = registry.devices()
    written = 0
    async with target.client() as container, storage_errors(f"writing {blob_name}"):
        writer = BlockWriter(container, blob_name)
        for number, device in enumerate(devices, start=1):
            for line in export_entries(registry, device, exclude_keys):
                await writer.write(line)
                written += 1
            if number % _SLICE == 0:
                progress(number / len(devices))
                await asyncio.sleep(0)
        await writer.close()
    return written
