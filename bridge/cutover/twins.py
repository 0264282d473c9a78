"""The twin side of a verdict: what IoT Hub's device twins say about a wave's devices.

Reported properties can be written only over the device's own connection (the service API
cannot write them, and the bridge never holds device keys), so a reported `migration`
section naming the wave's job was written by the device itself, on Azure.
"""

from __future__ import annotations

from bridge.azure.hub import IotHubService
from bridge.errors import NotFound

__all__ = ["on_azure", "query_arrivals"]


async def query_arrivals(hub: IotHubService, job_id: str) -> set[str]:
    """Devices connected whose own reported section names the job: one query for the whole
    wave, instead of a twin read per device (IoT Hub's quotas). The index lags."""
    sql = (
        "SELECT deviceId, connectionState FROM devices WHERE "  # noqa: S608 - job ids are [A-Za-z0-9_-]
        f"properties.reported.migration.jobId = '{job_id}' "
        "AND properties.reported.migration.status = 'migrated'"
    )
    return {
        row["deviceId"] async for row in hub.query(sql) if row.get("connectionState") == "Connected"
    }


async def on_azure(
    hub: IotHubService, device_id: str, job_id: str, *, connection_seen: bool = False
) -> bool:
    """The device's own connection is up (or its connection event was seen) and its own
    reported section names the job: one twin read, never lagging like the query."""
    try:
        twin = await hub.get_twin(device_id)
    except NotFound:
        return False
    migration = twin.reported.get("migration") or {}
    return (
        (connection_seen or twin.connection_state == "Connected")
        and migration.get("status") == "migrated"
        and migration.get("jobId") == job_id
    )
