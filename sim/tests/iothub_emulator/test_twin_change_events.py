"""Twin change notifications on the built-in endpoint, read with Microsoft's SDKs."""

import asyncio
from pathlib import Path
from typing import Any

import pytest
from azure.eventhub.aio import EventHubConsumerClient
from azure.iot.device.aio import IoTHubDeviceClient
from azure.iot.hub.models import Twin, TwinProperties

from bridge_sim.iothub.emulator import IotHubEmulator
from iothub_emulator.test_device_harness import shutdown
from iothub_emulator.test_emulator import registry_manager

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
async def hub(tmp_path: Path) -> Any:
    async with IotHubEmulator(workdir=tmp_path / "hub", azurite=False) as emulator:
        yield emulator


async def twin_changes(env: dict[str, str], count: int) -> list[Any]:
    """The first `count` twinChangeEvents of the built-in endpoint."""
    received: list[Any] = []
    done = asyncio.Event()

    async def on_event(_context: Any, event: Any) -> None:
        if event.system_properties.get(b"iothub-message-source") == b"twinChangeEvents":
            received.append(event)
            if len(received) >= count:
                done.set()

    client = EventHubConsumerClient.from_connection_string(
        env["IOTHUB_EVENTHUB_CONNECTION_STRING"], consumer_group="$Default"
    )
    task = asyncio.create_task(client.receive(on_event, starting_position="-1"))
    try:
        await asyncio.wait_for(done.wait(), 30)
    finally:
        await client.close()
        task.cancel()
    return received


async def test_service_patches_replaces_and_device_reports_each_raise_an_event(hub) -> None:
    env = hub.env()
    manager = registry_manager(env)
    await asyncio.to_thread(manager.create_device_with_sas, "t1", "", "", "enabled")
    patch = Twin(properties=TwinProperties(desired={"fan": 2}))
    await asyncio.to_thread(manager.update_twin, "t1", patch, "*")
    whole = Twin(tags={"site": "a"}, properties=TwinProperties(desired={"temp": 20}))
    await asyncio.to_thread(manager.replace_twin, "t1", whole)
    key = (await asyncio.to_thread(manager.get_device, "t1")).authentication.symmetric_key
    client = IoTHubDeviceClient.create_from_connection_string(
        f"HostName={hub.hostname};DeviceId=t1;SharedAccessKey={key.primary_key};"
        f"GatewayHostName={env['IOTHUB_GATEWAY_HOST']}",
        server_verification_cert=Path(env["IOTHUB_ROOT_CA"]).read_text(),
        connection_retry=False,
    )
    try:
        await client.connect()
        await client.patch_twin_reported_properties({"temp": 19.5})
    finally:
        await shutdown(client)

    updated, replaced, reported = await twin_changes(env, 3)
    for event in (updated, replaced, reported):
        assert event.system_properties[b"iothub-connection-device-id"] == b"t1"
        assert event.system_properties[b"content-type"] == b"application/json"
        assert event.properties[b"iothub-message-schema"] == b"twinChangeNotification"
        assert event.properties[b"hubName"] == hub.hub_name.encode()
        assert event.properties[b"deviceId"] == b"t1"
        assert b"moduleId" not in event.properties
    assert updated.properties[b"opType"] == b"updateTwin"
    assert updated.body_as_json() == {
        "version": 2,
        "properties": {"desired": {"fan": 2, "$version": 2}},
    }
    assert replaced.properties[b"opType"] == b"replaceTwin"
    assert replaced.body_as_json() == {
        "version": 3,
        "tags": {"site": "a"},
        "properties": {"desired": {"temp": 20, "$version": 3}},
    }
    assert reported.properties[b"opType"] == b"updateTwin"
    body = reported.body_as_json()
    assert body["properties"] == {"reported": {"temp": 19.5, "$version": 2}}
    assert body["version"] > 3
