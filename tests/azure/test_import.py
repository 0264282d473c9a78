"""Import jobs through Azurite, checked through Microsoft's azure-iot-hub."""

from __future__ import annotations

import asyncio
import hashlib

from bridge.azure import DeviceIdentity, DeviceImport, Operation, X509Thumbprints
from tests.azure.conftest import container_uri, count, new_container_uri


def fleet(size: int) -> list[DeviceImport]:
    return [
        DeviceImport(
            DeviceIdentity(
                f"imp-{n:05d}", X509Thumbprints(hashlib.sha256(f"c{n}".encode()).hexdigest())
            ),
            tags={"aws": {"thingType": f"type-{n % 4}"}},
            desired={"shadow": {"interval": n}},
        )
        for n in range(size)
    ]


async def test_import_of_2000_devices_with_twins(service, rm, hub, blobs, stats):
    container = new_container_uri(hub, blobs)

    result = await service.import_devices(
        fleet(2000), container_sas_uri=container, poll_interval=0.1
    )

    assert (result.status, result.errors, result.succeeded) == ("completed", (), True)
    stats_seen = await asyncio.to_thread(rm.get_device_registry_statistics)
    assert stats_seen.total_device_count == 2000
    twin = await asyncio.to_thread(rm.get_twin, "imp-01999")
    assert twin.tags == {"aws": {"thingType": "type-3"}}
    assert twin.properties.desired["shadow"] == {"interval": 1999}
    assert twin.x509_thumbprint.primary_thumbprint == (hashlib.sha256(b"c1999").hexdigest().upper())
    assert await asyncio.to_thread(count, rm, "tags.aws.thingType = 'type-1'") == 500
    # The identities written by the job spend no identity registry operations.
    assert stats.requests[Operation.IDENTITY_REGISTRY] == 0
    assert stats.requests[Operation.JOBS] >= 2


async def test_import_reports_failed_lines(service, rm, hub, blobs):
    await service.create_or_update_device(DeviceIdentity("imp-00001"))
    container = new_container_uri(hub, blobs)

    result = await service.import_devices(
        fleet(3), container_sas_uri=container, mode="create", poll_interval=0.1
    )

    assert result.status == "completed"
    assert not result.succeeded
    assert [(e["deviceId"], e["errorCode"]) for e in result.errors] == [("imp-00001", 409001)]
    assert len(await asyncio.to_thread(rm.get_devices)) == 3


async def test_import_waits_for_the_one_job_slot(service, rm, hub, blobs):
    assert hub.service is not None
    # The first job sits enqueued for a while, holding the hub's only job slot.
    hub.service.context.jobs.queue_delay = 1.0
    first = asyncio.create_task(
        service.import_devices(
            fleet(10)[:5], container_sas_uri=new_container_uri(hub, blobs), poll_interval=0.1
        )
    )
    await asyncio.sleep(0.3)
    hub.service.context.jobs.queue_delay = 0.0

    second = await service.import_devices(
        fleet(10)[5:], container_sas_uri=new_container_uri(hub, blobs), poll_interval=0.1
    )

    assert (await first).succeeded
    assert second.succeeded
    assert len(await asyncio.to_thread(rm.get_devices)) == 10
    refused = hub.service.stats.count(route="/jobs/create", status=429)
    assert refused >= 1


async def test_a_failed_job_comes_back_with_its_reason(service, rm, hub, blobs):
    result = await service.import_devices(
        fleet(5),
        container_sas_uri=new_container_uri(hub, blobs),
        output_container_sas_uri=container_uri(hub, "never-created"),
        poll_interval=0.1,
    )

    assert (result.status, result.succeeded, result.errors) == ("failed", False, ())
    assert "importErrors.log" in (result.failure_reason or "")
    assert await asyncio.to_thread(rm.get_devices) == []
