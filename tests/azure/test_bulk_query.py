"""Bulk registry calls and paged queries, checked through Microsoft's azure-iot-hub."""

from __future__ import annotations

import asyncio
import hashlib

import pytest

from bridge.azure import (
    DeviceIdentity,
    DeviceImport,
    HubError,
    IotHubService,
    Operation,
    Rate,
    RateBudget,
    X509Thumbprints,
)
from tests.azure.conftest import count


def thumbprint(number: int) -> X509Thumbprints:
    return X509Thumbprints(hashlib.sha256(f"cert-{number}".encode()).hexdigest())


async def test_bulk_create_with_twins(service, rm, hub):
    devices = [
        DeviceImport(
            DeviceIdentity(f"b-{n:03d}", thumbprint(n)),
            tags={"wave": n % 3},
            desired={"shadow": {"n": n}},
        )
        for n in range(250)
    ]

    result = await service.bulk(devices)

    assert (result.successful, result.devices) == (True, 250)
    # 100 per call: three calls for 250 devices.
    assert hub.service is not None
    assert hub.service.stats.count(method="POST", route="/devices") == 3
    twin = await asyncio.to_thread(rm.get_twin, "b-249")
    assert twin.tags == {"wave": 0}
    assert twin.properties.desired["shadow"] == {"n": 249}
    assert twin.x509_thumbprint.primary_thumbprint == thumbprint(249).primary
    assert await asyncio.to_thread(count, rm, "tags.wave = 1") == 83


async def test_bulk_partial_failure_names_each_failed_device(service, rm):
    await service.create_or_update_device(DeviceIdentity("exists"))
    devices = [DeviceIdentity("new-1"), DeviceIdentity("exists"), DeviceIdentity("new-2")]

    result = await service.bulk(devices, mode="create")

    assert not result.successful
    assert result.failed_ids == {"exists"}
    (error,) = result.errors
    assert error.code == "DeviceAlreadyExists"
    assert "exists" in error.message
    assert {d.device_id for d in await asyncio.to_thread(rm.get_devices)} == {
        "exists",
        "new-1",
        "new-2",
    }


async def test_bulk_delete_and_update_twin_modes(service, rm):
    await service.bulk([DeviceIdentity(f"d-{n}") for n in range(5)])

    deleted = await service.bulk([DeviceIdentity("d-0"), DeviceIdentity("d-9")], mode="delete")
    patched = await service.bulk(
        [DeviceImport(DeviceIdentity("d-1"), tags={"moved": True})], mode="updateTwin"
    )

    assert deleted.failed_ids == {"d-9"}
    assert patched.successful
    ids = {d.device_id for d in await asyncio.to_thread(rm.get_devices)}
    assert ids == {"d-1", "d-2", "d-3", "d-4"}
    assert (await asyncio.to_thread(rm.get_twin, "d-1")).tags == {"moved": True}


async def test_bulk_request_refused_as_a_whole_raises(service):
    with pytest.raises(HubError) as refused:
        await service.bulk([DeviceIdentity("twice"), DeviceIdentity("twice")])
    assert refused.value.status == 400


async def test_bulk_chunks_to_the_burst_the_budget_allows(env, hub, stats):
    # 30 identity operations a second, 15 at once (half a second kept in reserve): four calls.
    budget = RateBudget({Operation.IDENTITY_REGISTRY: Rate(30, 1)}, latency_reserve=0.5)
    async with IotHubService(
        env["IOTHUB_CONNECTION_STRING"], budget=budget, ca_bundle=env["IOTHUB_ROOT_CA"]
    ) as service:
        result = await service.bulk([DeviceIdentity(f"s-{n}") for n in range(60)])

    assert (result.successful, result.devices) == (True, 60)
    assert hub.service is not None
    assert hub.service.stats.count(method="POST", route="/devices") == 4
    assert len(hub.registry.devices()) == 60


async def test_query_reads_every_page(service, rm, hub):
    await service.bulk(
        [DeviceImport(DeviceIdentity(f"q-{n:03d}"), tags={"odd": n % 2}) for n in range(230)]
    )

    rows = [row async for row in service.query("SELECT * FROM devices", page_size=50)]
    odd = [row async for row in service.query("SELECT * FROM devices WHERE tags.odd = 1")]

    assert sorted(row["deviceId"] for row in rows) == [f"q-{n:03d}" for n in range(230)]
    assert len(odd) == 115
    assert hub.service is not None
    # 230 rows in pages of 50, then 115 in pages of 100: five pages and two.
    assert hub.service.stats.count(route="/devices/query") == 7


async def test_query_projection_and_page_size_check(service):
    await service.bulk([DeviceIdentity(f"p-{n}") for n in range(3)])

    rows = [row async for row in service.query("SELECT COUNT() AS total FROM devices")]

    assert rows == [{"total": 3}]
    with pytest.raises(ValueError, match="page_size"):
        [row async for row in service.query("SELECT * FROM devices", page_size=1000)]
