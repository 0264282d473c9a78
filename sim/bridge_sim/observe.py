"""Independent witnesses of a rehearsal's telemetry, one on each cloud.

The verification report must not take the bridge's word for anything, so it reads what
each cloud's own consumers would read: an MQTT subscriber on the AWS stand-in (where the
estate's rules and applications listen) and Microsoft's `EventHubConsumerClient` on the IoT
Hub emulator's Event Hubs-compatible endpoint (where Azure routes and applications listen),
one client per partition. Each records, per device, the readings' sequence numbers and how
they arrived.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import aiomqtt
from azure.eventhub.aio import EventHubConsumerClient

from bridge.logging import get_logger

__all__ = ["Arrival", "AwsTap", "AzureTap"]

log = get_logger("sim.observe")


@dataclass(frozen=True)
class Arrival:
    """One reading as a cloud's consumers received it."""

    seq: int
    sent_at: float  # the device's clock, from the payload
    received_at: float
    via: str  # "aws"; on Azure: "relay" (the bridge's module) or "device" (the device itself)
    enqueued_at: float = 0.0  # on Azure: when IoT Hub took it (its clock)


def _reading(body: str | bytes) -> tuple[int, float] | None:
    try:
        payload = json.loads(body)
        return int(payload["seq"]), float(payload.get("ts", 0.0))
    except (ValueError, KeyError, TypeError):
        return None  # not a fleet reading (the estate's other telemetry)


class AwsTap:
    """Subscribes to the fleet's telemetry topic on the AWS stand-in's tool listener.

    Args:
        address: `host:port` of the stand-in's plain listener (`SIM_AWS_MQTT_PLAIN`).
        topic_filter: The telemetry filter; the device is the topic's last level.
    """

    def __init__(self, address: str, topic_filter: str = "dt/+") -> None:
        host, _, port = address.rpartition(":")
        self._host, self._port, self._filter = host, int(port), topic_filter
        self.arrivals: dict[str, list[Arrival]] = defaultdict(list)
        self._subscribed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Self:
        self._task = asyncio.create_task(self._run(), name="sim.observe.aws")
        waiter = asyncio.create_task(self._subscribed.wait())
        await asyncio.wait({waiter, self._task}, return_when=asyncio.FIRST_COMPLETED)
        if self._task.done():
            waiter.cancel()
            self._task.result()  # raises why it could not subscribe
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                await self._task

    async def _run(self) -> None:
        while True:
            try:
                async with aiomqtt.Client(self._host, self._port) as client:
                    await client.subscribe(self._filter, qos=1)
                    self._subscribed.set()
                    async for message in client.messages:
                        payload = message.payload if isinstance(message.payload, bytes) else b""
                        if (reading := _reading(payload)) is None:
                            continue
                        device = message.topic.value.rsplit("/", 1)[-1]
                        seq, sent_at = reading
                        self.arrivals[device].append(Arrival(seq, sent_at, time.time(), "aws"))
            except aiomqtt.MqttError as exc:  # a broker restart: subscribe again
                log.warning("sim.observe.aws_reconnecting", error=str(exc))
                await asyncio.sleep(0.5)


class AzureTap:
    """Reads every telemetry event from IoT Hub's Event Hubs-compatible endpoint.

    Args:
        env: The stand-ins' settings (`IOTHUB_EVENTHUB_CONNECTION_STRING`).
        relay_module: The bridge's relay module id, to tell relayed messages apart.
        consumer_group: A group of its own, so it never competes with the bridge's readers.
    """

    def __init__(
        self,
        env: Mapping[str, str],
        relay_module: str = "aws-bridge",
        consumer_group: str = "$Default",
    ) -> None:
        self._connection_string = env["IOTHUB_EVENTHUB_CONNECTION_STRING"]
        self._relay_module = relay_module
        self._group = consumer_group
        self.arrivals: dict[str, list[Arrival]] = defaultdict(list)
        self._clients: list[EventHubConsumerClient] = []
        self._tasks: list[asyncio.Task[None]] = []

    def _client(self) -> EventHubConsumerClient:
        return EventHubConsumerClient.from_connection_string(
            self._connection_string, consumer_group=self._group
        )

    async def __aenter__(self) -> Self:
        async with self._client() as probe:
            partitions = await probe.get_partition_ids()
        for partition in partitions:
            client = self._client()
            self._clients.append(client)
            self._tasks.append(
                asyncio.create_task(
                    client.receive(self._on_event, partition_id=partition, starting_position="-1"),
                    name=f"sim.observe.azure[{partition}]",
                )
            )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for client in self._clients:
            await client.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _on_event(self, _context: Any, event: Any) -> None:
        if event is None:
            return
        system = event.system_properties
        if system.get(b"iothub-message-source") != b"Telemetry":
            return
        if (reading := _reading(event.body_as_str())) is None:
            return
        device = system.get(b"iothub-connection-device-id", b"").decode()
        module = system.get(b"iothub-connection-module-id", b"").decode()
        via = "relay" if module == self._relay_module else "device"
        seq, sent_at = reading
        enqueued = event.enqueued_time.timestamp() if event.enqueued_time else 0.0
        self.arrivals[device].append(Arrival(seq, sent_at, time.time(), via, enqueued))
