"""Arrivals on Azure from IoT Hub's connection-state events: the push-based signal.

A device that connects to IoT Hub as itself over MQTT or AMQP makes IoT Hub emit a
`deviceConnected` event (`iothub-message-source: deviceConnectionStateEvents`), which the
landing zone's `bridge-connection-state` route delivers to the Event Hubs-compatible
endpoint. Read with the cutover's own consumer group, checkpointed in blob storage by the
reader the reverse path uses (`HubEventReader`), it tells the service the moment a moving
device reached Azure, seconds before a twin query would, and without one query per poll.

Module connections emit the same events with `moduleId` set (the relay's `aws-bridge`
module connects on the device's behalf): those say nothing about the device and are
skipped. An event is never a verdict alone: the service still reads the twin for the
device's own reported `migration` section. Each arrival is written to the store before its
batch is checkpointed, so a restart loses none; a connection older than the wave's job is
one from before (a device moved in an earlier, rolled-back wave) and is ignored.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Sequence

from bridge.azure.events import HubEvent, HubEventReader
from bridge.config import CloudSettings, CutoverSettings
from bridge.core.store import Store
from bridge.cutover.wave import ACTIVE, job_sent_key
from bridge.logging import get_logger

__all__ = ["CONNECTION_STATE_SOURCE", "Arrivals", "device_connected_at", "open_arrivals"]

_log = get_logger("cutover.arrivals")

CONNECTION_STATE_SOURCE = "deviceConnectionStateEvents"
# How far IoT Hub's clock may lag the bridge's before a connection looks older than the job.
_CLOCK_SKEW = 5.0


def device_connected_at(event: HubEvent) -> float | None:
    """When the device itself (not one of its modules) connected, or None for any other
    event: telemetry, twin changes, disconnections, module connections."""
    properties = event.properties
    if (
        event.source != CONNECTION_STATE_SOURCE
        or properties.get("opType") != "deviceConnected"
        or event.module_id
        or properties.get("moduleId")
        or not event.device_id
    ):
        return None
    stamp = properties.get("operationTimestamp")
    if stamp:
        try:
            return dt.datetime.fromisoformat(stamp).timestamp()
        except ValueError:
            pass
    return event.enqueued_at


def _key(wave: str, device_id: str) -> str:
    return f"cutover.{wave}.azure_connected.{device_id}"


class Arrivals:
    """Connection-state events for the devices of active waves, when the endpoint is read.

    `reader` is None when the endpoint is not configured; `why_not` then says why, and the
    service judges by twin queries alone.
    """

    def __init__(self, store: Store, reader: HubEventReader | None, *, why_not: str = "") -> None:
        self._store = store
        self._reader = reader
        self._why_not = why_not
        self._failure = ""
        self._seen: dict[tuple[str, str], float] = {}  # (wave, device) -> connected at
        self._looked_up: set[tuple[str, str]] = set()

    @property
    def in_use(self) -> bool:
        """Events are being read: the reader is up and owns partitions of the endpoint."""
        return self._reader is not None and not self._failure and bool(self._reader.partitions)

    def describe(self) -> str:
        """Which signal decides arrivals, and why, for /readyz and the logs."""
        if self.in_use:
            assert self._reader is not None
            owned = len(self._reader.partitions)
            return f"connection-state events ({owned} partitions), twin reads to confirm"
        why = (
            self._failure
            or self._why_not
            or (self._reader.last_error if self._reader else "")
            or "no partition of the endpoint claimed yet"
        )
        return f"twin queries ({why})"

    async def run(self) -> None:
        """Read until the reader is closed; a failure leaves the twin queries in charge."""
        if self._reader is None:
            return
        try:
            await self._reader.run(self.handle)
        except Exception as exc:
            self._failure = f"the endpoint reader stopped: {type(exc).__name__}: {exc}"
            _log.exception("cutover.arrivals_failed", signal=self.describe())

    async def close(self) -> None:
        if self._reader is not None:
            await self._reader.close()

    async def handle(self, _partition: str, events: Sequence[HubEvent]) -> bool:
        """Record the connections of moving devices; True settles the batch."""
        connections = [
            (event.device_id, at)
            for event in events
            if (at := device_connected_at(event)) is not None and event.device_id
        ]
        if not connections:
            return True
        moving = await self._moving()
        for device_id, at in connections:
            found = moving.get(device_id)
            if found is None:
                continue
            wave, sent = found
            if at < sent - _CLOCK_SKEW or await self.connected_at(wave, device_id) is not None:
                continue  # a connection from before the job, or not the first since it
            await self._store.set_checkpoint(_key(wave, device_id), repr(at))
            self._seen[(wave, device_id)] = at
            _log.info(
                "cutover.device_connected_event",
                wave=wave,
                device_id=device_id,
                seconds_after_job=round(at - sent, 3),
            )
        return True

    async def connected_at(self, wave: str, device_id: str) -> float | None:
        """When the device's first connection since the wave's job was seen, if it was."""
        key = (wave, device_id)
        if key not in self._seen and key not in self._looked_up:
            self._looked_up.add(key)  # the store once per device and start; then memory
            stored = await self._store.get_checkpoint(_key(wave, device_id))
            if stored is not None:
                self._seen[key] = float(stored)
        return self._seen.get(key)

    async def _moving(self) -> dict[str, tuple[str, float]]:
        """Undecided devices of active waves whose job was sent: device -> (wave, sent).

        The moment the job was sent decides, not the wave's job id: that is stored a step
        later, and a device can get its job and connect to Azure in between.
        """
        moving: dict[str, tuple[str, float]] = {}
        for wave in await self._store.waves():
            if wave.state not in ACTIVE:
                continue
            sent = await self._store.get_checkpoint(job_sent_key(wave.name))
            if sent is None:
                continue
            for member in await self._store.wave_devices(wave.name):
                if member.outcome is None:
                    moving[member.device_id] = (wave.name, float(sent))
        return moving


async def open_arrivals(
    stack: contextlib.AsyncExitStack, store: Store, cloud: CloudSettings, cutover: CutoverSettings
) -> Arrivals:
    """The connection-state reader (closed with `stack`) when the endpoint and blob storage
    are configured and reachable; otherwise arrivals come from twin queries, and /readyz
    says why. An unreachable storage account is no reason to refuse to start a cutover."""
    if not cutover.connection_events:
        return Arrivals(store, None, why_not="BRIDGE_CUTOVER__CONNECTION_EVENTS is false")
    endpoint, storage = (
        cloud.IOTHUB_EVENTHUB_CONNECTION_STRING,
        cloud.AZURE_STORAGE_CONNECTION_STRING,
    )
    if endpoint is None or storage is None:
        why = "IOTHUB_EVENTHUB_CONNECTION_STRING or AZURE_STORAGE_CONNECTION_STRING is not set"
        return Arrivals(store, None, why_not=why)
    reader = HubEventReader(
        endpoint.get_secret_value(),
        consumer_group=cutover.consumer_group,
        storage_connection_string=storage.get_secret_value(),
        container=cutover.checkpoint_container,
    )
    try:
        await stack.enter_async_context(reader)
    except Exception as exc:
        why = f"blob storage for checkpoints unreachable: {type(exc).__name__}: {exc}"
        _log.warning("cutover.connection_events_unavailable", error=why)
        return Arrivals(store, None, why_not=why)
    return Arrivals(store, reader)
