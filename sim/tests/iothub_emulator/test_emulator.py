"""The assembled emulator, reached only through its settings, with Microsoft's SDKs."""

import asyncio
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from azure.eventhub.aio import EventHubConsumerClient
from azure.eventhub.extensions.checkpointstoreblobaio import BlobCheckpointStore
from azure.iot.device import Message
from azure.iot.device.aio import IoTHubDeviceClient
from azure.iot.hub import IoTHubRegistryManager
from azure.storage.blob.aio import BlobServiceClient

from bridge_sim.iothub.emulator import IotHubEmulator
from iothub_emulator.test_device_harness import STEP, shutdown


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[IotHubEmulator]:
    async with IotHubEmulator(workdir=tmp_path / "hub") as emulator:
        yield emulator


def registry_manager(env: dict[str, str]) -> Any:
    manager = IoTHubRegistryManager.from_connection_string(env["IOTHUB_CONNECTION_STRING"])
    manager.protocol.config.connection.verify = env["IOTHUB_ROOT_CA"]
    return manager


async def first_telemetry(env: dict[str, str]) -> list[Any]:
    """Read the built-in endpoint from the start until the first telemetry event."""
    received: list[Any] = []
    done = asyncio.Event()

    async def on_event(_context: Any, event: Any) -> None:
        if event.system_properties.get(b"iothub-message-source") == b"Telemetry":
            received.append(event)
            done.set()

    client = EventHubConsumerClient.from_connection_string(
        env["IOTHUB_EVENTHUB_CONNECTION_STRING"], consumer_group="$Default"
    )
    task = asyncio.create_task(client.receive(on_event, starting_position="-1"))
    try:
        await asyncio.wait_for(done.wait(), 20)
    finally:
        await client.close()
        task.cancel()
    return received[:1]


async def test_settings_reach_the_registry_and_the_event_stream(hub: IotHubEmulator) -> None:
    env = hub.env()
    manager = registry_manager(env)
    device = await asyncio.to_thread(manager.create_device_with_sas, "d1", "", "", "enabled")
    assert device.device_id == "d1"
    twin = await asyncio.to_thread(manager.get_twin, "d1")
    assert twin.device_id == "d1"
    hub.events.append(body=b'{"t": 21.5}', device_id="d1", properties={"awsTopic": "dt/d1"})
    (event,) = await first_telemetry(env)
    assert event.body_as_json() == {"t": 21.5}
    assert event.system_properties[b"iothub-connection-device-id"] == b"d1"
    assert event.properties[b"awsTopic"] == b"dt/d1"


async def test_consumer_checkpoints_in_azurite_and_resumes_after_them(hub: IotHubEmulator) -> None:
    env = hub.env()
    async with BlobServiceClient.from_connection_string(
        env["AZURE_STORAGE_CONNECTION_STRING"]
    ) as blobs:
        await blobs.create_container("checkpoints")
    for n in range(3):
        hub.events.append(body=str(n).encode(), device_id="same-device")

    async def read(expected: int) -> list[bytes]:
        store = BlobCheckpointStore.from_connection_string(
            env["AZURE_STORAGE_CONNECTION_STRING"], "checkpoints"
        )
        client = EventHubConsumerClient.from_connection_string(
            env["IOTHUB_EVENTHUB_CONNECTION_STRING"],
            consumer_group="$Default",
            checkpoint_store=store,
        )
        bodies: list[bytes] = []
        done = asyncio.Event()

        async def on_event(context: Any, event: Any) -> None:
            bodies.append(b"".join(event.body))
            await context.update_checkpoint(event)
            if len(bodies) == expected:
                done.set()

        task = asyncio.create_task(client.receive(on_event, starting_position="-1"))
        try:
            await asyncio.wait_for(done.wait(), 30)
        finally:
            await client.close()
            task.cancel()
            await store.close()
        return bodies

    assert await read(3) == [b"0", b"1", b"2"]
    hub.events.append(body=b"3", device_id="same-device")
    assert await read(1) == [b"3"], "a restarted consumer continues after its checkpoint"


async def test_a_device_connects_with_the_settings_and_its_telemetry_is_consumed(
    hub: IotHubEmulator,
) -> None:
    env = hub.env()
    manager = registry_manager(env)
    await asyncio.to_thread(manager.create_device_with_sas, "pump-1", "", "", "enabled")
    device = await asyncio.to_thread(manager.get_device, "pump-1")
    key = device.authentication.symmetric_key.primary_key
    connection_string = (
        f"HostName={hub.hostname};DeviceId=pump-1;SharedAccessKey={key};"
        f"GatewayHostName={env['IOTHUB_GATEWAY_HOST']}"
    )
    client = IoTHubDeviceClient.create_from_connection_string(
        connection_string,
        server_verification_cert=Path(env["IOTHUB_ROOT_CA"]).read_text(),
        connection_retry=False,
    )
    try:
        await client.connect()
        message = Message(
            '{"rpm": 1200}', content_encoding="utf-8", content_type="application/json"
        )
        message.custom_properties["awsTopic"] = "pumps/pump-1"
        await client.send_message(message)
        twin = await asyncio.to_thread(manager.get_twin, "pump-1")
        assert twin.connection_state == "Connected"
    finally:
        await shutdown(client)  # also closes the socket pair paho 1.6 leaves open
    (event,) = await first_telemetry(env)
    assert event.body_as_json() == {"rpm": 1200}
    assert event.properties[b"awsTopic"] == b"pumps/pump-1"


async def test_control_api_reads_captured_telemetry_and_drops_connections(
    hub: IotHubEmulator,
) -> None:
    env = hub.env()
    manager = registry_manager(env)
    await asyncio.to_thread(manager.create_device_with_sas, "fan-1", "", "", "enabled")
    key = (await asyncio.to_thread(manager.get_device, "fan-1")).authentication.symmetric_key
    client = IoTHubDeviceClient.create_from_connection_string(
        f"HostName={hub.hostname};DeviceId=fan-1;SharedAccessKey={key.primary_key};"
        f"GatewayHostName={env['IOTHUB_GATEWAY_HOST']}",
        server_verification_cert=Path(env["IOTHUB_ROOT_CA"]).read_text(),
        connection_retry=False,
    )
    assert hub.service is not None
    base = f"https://{hub.service.host_name}/_emulator"
    try:
        await client.connect()
        await client.send_message(Message("spin", content_encoding="utf-8"))
        async with aiohttp.ClientSession() as http:
            ssl_context = ssl.create_default_context(cafile=env["IOTHUB_ROOT_CA"])
            async with http.get(f"{base}/telemetry?deviceId=fan-1", ssl=ssl_context) as answer:
                assert answer.status == 200
                (captured,) = await answer.json()
            assert (captured["deviceId"], captured["body"]) == ("fan-1", "spin")
            async with http.post(
                f"{base}/connections/drop", json={"deviceId": "fan-1"}, ssl=ssl_context
            ) as answer:
                assert await answer.json() == {"dropped": 1}
        twin = await asyncio.to_thread(manager.get_twin, "fan-1")
        assert twin.connection_state == "Disconnected"
        # The device notices too (and only then is shut down: the SDK raises
        # NoConnectionError when its disconnect races the drop it has not processed yet).
        async with asyncio.timeout(STEP):
            while client.connected:  # the SDK offers no event to wait on
                await asyncio.sleep(0.05)
    finally:
        await shutdown(client)
