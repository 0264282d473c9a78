"""Storage container endpoints: messages written to Azurite as IoT Hub's JSON encoding does.

Each message is one JSON record on its own line, with `EnqueuedTimeUtc`, `Properties`
(application properties), `SystemProperties` and `Body`: the JSON document itself when the
message is JSON in UTF-8 (IoT Hub can read it), else the body's bytes in base64. Blobs are
named by the endpoint's file name format, `{iothub}/{partition}/{YYYY}/{MM}/{DD}/{HH}/{mm}`
as the landing zone sets it. IoT Hub batches for 60 s or more and writes block blobs; the
emulator appends every `batch_seconds` to append blobs of the same names, so a blob holds
the same records, sooner. `flush()` writes what is waiting (tests await it, then read).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import json
from collections import defaultdict
from typing import Any, Self

from azure.core.exceptions import ResourceExistsError
from azure.storage.blob.aio import BlobServiceClient

from bridge.logging import get_logger
from bridge_sim.iothub.routing.values import UNDEFINED, RoutedMessage, iso_time

__all__ = ["FILE_NAME_FORMAT", "StorageSink", "blob_record"]

FILE_NAME_FORMAT = "{iothub}/{partition}/{YYYY}/{MM}/{DD}/{HH}/{mm}"
_log = get_logger("sim.iothub.routing")


def blob_record(message: RoutedMessage, auth_annotations: dict[str, Any]) -> dict[str, Any]:
    """One message as a line of a JSON-encoded storage endpoint blob."""
    enqueued = iso_time(message.enqueued_time_ms)
    system: dict[str, Any] = {"connectionDeviceId": message.device_id}
    if message.module_id:
        system["connectionModuleId"] = message.module_id
    for key, name in (
        ("iothub-connection-auth-method", "connectionAuthMethod"),
        ("iothub-connection-auth-generation-id", "connectionDeviceGenerationId"),
    ):
        if isinstance(auth_annotations.get(key), str):
            system[name] = auth_annotations[key]
    optional = {
        "messageId": message.message_id,
        "correlationId": message.correlation_id,
        "userId": message.user_id,
        "contentType": message.content_type,
        "contentEncoding": message.content_encoding,
    }
    system.update({name: value for name, value in optional.items() if value is not None})
    system["enqueuedTime"] = enqueued
    utf8_json = (message.content_encoding or "").lower() == "utf-8"
    body: Any = message.json_body if utf8_json else UNDEFINED
    if body is UNDEFINED:
        body = base64.b64encode(message.body).decode()
    return {
        "EnqueuedTimeUtc": enqueued,
        "Properties": dict(message.properties),
        "SystemProperties": system,
        "Body": body,
    }


class StorageSink:
    """Buffers records per container and blob, and appends them to Azurite in batches."""

    def __init__(
        self, *, connection_string: str, hub_name: str, batch_seconds: float = 0.5
    ) -> None:
        self.hub_name = hub_name
        self.batch_seconds = batch_seconds
        self._connection_string = connection_string
        self._client: BlobServiceClient | None = None
        self._pending: dict[tuple[str, str], list[bytes]] = defaultdict(list)
        self._created: set[str] = set()
        self._lock = asyncio.Lock()
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.written = 0

    async def __aenter__(self) -> Self:
        self._client = BlobServiceClient.from_connection_string(self._connection_string)
        self._task = asyncio.create_task(self._run(), name="iothub[routing].storage")
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(Exception):
            await self.flush()
        if self._client is not None:
            await self._client.close()

    def add(
        self, container: str, partition: int, message: RoutedMessage, annotations: dict[str, Any]
    ) -> None:
        """Queue one message for the container; it is written within `batch_seconds`."""
        stamp = dt.datetime.fromtimestamp(message.enqueued_time_ms / 1000, dt.UTC)
        name = FILE_NAME_FORMAT.format(
            iothub=self.hub_name,
            partition=partition,
            YYYY=f"{stamp.year:04d}",
            MM=f"{stamp.month:02d}",
            DD=f"{stamp.day:02d}",
            HH=f"{stamp.hour:02d}",
            mm=f"{stamp.minute:02d}",
        )
        line = json.dumps(blob_record(message, annotations), separators=(",", ":")) + "\n"
        self._pending[(container, name)].append(line.encode())
        self._wakeup.set()

    async def flush(self) -> None:
        """Write every queued record now."""
        async with self._lock:
            pending, self._pending = self._pending, defaultdict(list)
            for (container, name), lines in pending.items():
                await self._append(container, name, b"".join(lines))
                self.written += len(lines)

    async def _append(self, container: str, name: str, data: bytes) -> None:
        assert self._client is not None
        if container not in self._created:
            # The landing zone's Terraform creates the container; here the first write does.
            with contextlib.suppress(ResourceExistsError):
                await self._client.create_container(container)
            self._created.add(container)
        blob = self._client.get_blob_client(container, name)
        with contextlib.suppress(ResourceExistsError):
            await blob.create_append_blob(if_none_match="*")
        await blob.append_block(data)

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            await asyncio.sleep(self.batch_seconds)
            self._wakeup.clear()
            try:
                await self.flush()
            except Exception:
                _log.exception("sim.iothub.routing_storage_failed")
