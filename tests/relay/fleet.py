"""Helpers for relay tests: devices with their own certificates, and what IoT Hub captured."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import aiomqtt
from awscrt import mqtt5
from azure.eventhub.aio import EventHubConsumerClient

from bridge.core.machine import Event
from bridge.core.store import open_store
from tests.aws_devices import Device, connect_device, register_thing

TIMEOUT = 10.0


def make_fleet(stack: Any, iot: Any, names: list[str]) -> dict[str, Any]:
    """Register every thing with its own AWS certificate (not connected yet)."""
    return {name: register_thing(iot, name, stack.aws.region) for name in names}


def connect(stack: Any, things: dict[str, Any]) -> dict[str, Device]:
    return {name: connect_device(stack.aws, thing) for name, thing in things.items()}


def publish(device: Device, topic: str, body: dict[str, Any]) -> None:
    """One QoS 1 publish, returning once the broker acknowledged it."""
    packet = mqtt5.PublishPacket(
        topic=topic, payload=json.dumps(body).encode(), qos=mqtt5.QoS.AT_LEAST_ONCE
    )
    device.client.publish(packet).result(TIMEOUT)


async def publish_raw(stack: Any, topic: str, payload: bytes) -> None:
    """Publish from the stand-in's loopback listener (no device policy applies there)."""
    host, port = stack.env()["SIM_AWS_MQTT_PLAIN"].rsplit(":", 1)
    async with aiomqtt.Client(host, int(port), identifier="relay-test-raw") as client:
        await client.publish(topic, payload, qos=1)


async def captured(stack: Any, device_id: str) -> list[dict[str, Any]]:
    """Telemetry IoT Hub captured for `device_id`, oldest first."""
    service = stack.iothub.service
    url = f"https://{service.host}:{service.port}/_emulator/telemetry"
    async with (
        aiohttp.ClientSession() as client,
        client.get(url, params={"deviceId": device_id, "limit": "10000"}, ssl=False) as answer,
    ):
        assert answer.status == 200, await answer.text()
        return list(await answer.json())


async def until_captured(
    stack: Any, counts: dict[str, int], timeout: float = 60.0
) -> dict[str, list[dict[str, Any]]]:
    """Wait until IoT Hub holds at least `counts[device]` distinct message ids per device."""
    async with asyncio.timeout(timeout):
        while True:
            found = {device: await captured(stack, device) for device in counts}
            distinct = {d: len({e["messageId"] for e in found[d]}) for d in found}
            if all(distinct[d] >= counts[d] for d in counts):
                return found
            await asyncio.sleep(0.2)


async def cut_over(dsn: str, device_id: str) -> None:
    """Move a device through a wave to CUT_OVER, as the cutover step will."""
    async with open_store(dsn) as store:
        for event in (Event.SCHEDULE_CUTOVER, Event.JOB_SENT, Event.AZURE_CONNECTED):
            await store.transition(device_id, event)


def first_seen_seqs(events: list[dict[str, Any]]) -> list[int]:
    """The `seq` of each message id in the order IoT Hub first received it."""
    seen: set[str] = set()
    seqs = []
    for event in events:
        if event["messageId"] not in seen:
            seen.add(event["messageId"])
            seqs.append(json.loads(event["body"])["seq"])
    return seqs


async def read_event_hub(env: dict[str, str], count: int, timeout: float = 30.0) -> list[Any]:
    """`count` telemetry events from IoT Hub's Event Hubs-compatible endpoint (other sources,
    such as connection state events, are left out), with Microsoft's EventHubConsumerClient,
    one client per partition (see issue 11 on all-partition speed)."""
    connection_string = env["IOTHUB_EVENTHUB_CONNECTION_STRING"]

    def client() -> EventHubConsumerClient:
        return EventHubConsumerClient.from_connection_string(
            connection_string, consumer_group="$Default"
        )

    async with client() as probe:
        partitions = await probe.get_partition_ids()
    events: list[Any] = []
    enough = asyncio.Event()

    async def on_event(_context: Any, event: Any) -> None:
        source = event.system_properties.get(b"iothub-message-source") if event else None
        if source == b"Telemetry":
            events.append(event)
            if len(events) >= count:
                enough.set()

    clients = [client() for _ in partitions]
    tasks = [
        asyncio.create_task(c.receive(on_event, partition_id=p, starting_position="-1"))
        for c, p in zip(clients, partitions, strict=True)
    ]
    try:
        await asyncio.wait_for(enough.wait(), timeout)
    finally:
        for c in clients:
            await c.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return events
