"""`HubEventReader`: IoT Hub's Event Hubs-compatible endpoint, checkpointed in blob storage.

Microsoft's asyncio `EventHubConsumerClient` reads every partition with the bridge's own
consumer group; `BlobCheckpointStore` keeps the partitions' ownership and checkpoints. A
batch's checkpoint is written only after the handler returned for all of it, so whatever
the handler did not finish (a crash, a kill -9, a stop) is read again: at least once.
Events reach the handler as plain `HubEvent`s, per partition in order.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Self

from azure.core.exceptions import ResourceExistsError
from azure.eventhub.aio import EventHubConsumerClient
from azure.eventhub.extensions.checkpointstoreblobaio import BlobCheckpointStore
from azure.storage.blob.aio import BlobServiceClient

from bridge.logging import get_logger

__all__ = ["BatchHandler", "HubEvent", "HubEventReader"]

log = get_logger("azure.events")


@dataclass(frozen=True)
class HubEvent:
    """One event of the built-in endpoint: telemetry, or a notification (twin changes...)."""

    partition: str
    sequence_number: int
    enqueued_at: float  # seconds since the epoch
    source: str  # iothub-message-source: Telemetry, twinChangeEvents, ...
    device_id: str | None
    module_id: str | None
    body: bytes
    properties: Mapping[str, str] = field(default_factory=dict)  # application properties
    content_type: str | None = None
    content_encoding: str | None = None
    message_id: str | None = None
    generation_id: str | None = None  # changes when the identity is deleted and created again


BatchHandler = Callable[[str, Sequence[HubEvent]], Awaitable[bool]]
"""Called with a partition id and its next events, in order; True settles them all (they
are checkpointed), False stops the reader with them unsettled (read again next time)."""


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def hub_event(partition: str, event: Any) -> HubEvent:
    """A plain `HubEvent` from the SDK's `EventData`."""
    system = event.system_properties or {}
    enqueued = event.enqueued_time
    return HubEvent(
        partition=partition,
        sequence_number=int(event.sequence_number or 0),
        enqueued_at=enqueued.timestamp() if enqueued is not None else 0.0,
        source=_text(system.get(b"iothub-message-source")) or "Telemetry",
        device_id=_text(system.get(b"iothub-connection-device-id")),
        module_id=_text(system.get(b"iothub-connection-module-id")),
        body=b"".join(event.body) if not isinstance(event.body, bytes) else event.body,
        properties={
            key: text
            for raw_key, value in (event.properties or {}).items()
            if (key := _text(raw_key)) is not None and (text := _text(value)) is not None
        },
        content_type=event.content_type,
        content_encoding=_text(system.get(b"content-encoding")),
        message_id=_text(event.message_id),
        generation_id=_text(system.get(b"iothub-connection-auth-generation-id")),
    )


class HubEventReader:
    """Reads IoT Hub's built-in endpoint with one consumer group; an async context manager.

    Args:
        connection_string: The Event Hubs-compatible endpoint's connection string.
        consumer_group: The bridge's own consumer group (no other reader may use it).
        storage_connection_string: Blob storage for checkpoints and partition ownership.
        container: The blob container; created when missing.
        max_batch: Events handed to the handler at once, at most, per partition.
        balance_every: Seconds between looks at partition ownership (the SDK's 30 s default
            leaves a crashed reader's partitions unread for three minutes).
        ownership_expiry: Seconds after which a partition claimed by a reader that died
            (kill -9, a lost node) is taken over; a clean stop gives them up at once.
    """

    def __init__(
        self,
        connection_string: str,
        *,
        consumer_group: str,
        storage_connection_string: str,
        container: str,
        max_batch: int = 100,
        balance_every: float = 5.0,
        ownership_expiry: float = 20.0,
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._connection_string = connection_string
        self._consumer_group = consumer_group
        self._storage = storage_connection_string
        self._container = container
        self._max_batch = max_batch
        self._balance_every = balance_every
        self._ownership_expiry = ownership_expiry
        self._checkpoints: Any = None
        self._client: Any = None
        self.partitions: set[str] = set()  # partitions this reader owns now
        self.last_error = ""
        self._stopping = False
        self._closer: asyncio.Task[None] | None = None
        self._receiving: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Self:
        async with BlobServiceClient.from_connection_string(self._storage) as blobs:
            with contextlib.suppress(ResourceExistsError):
                await blobs.create_container(self._container)
        self._checkpoints = BlobCheckpointStore.from_connection_string(
            self._storage, self._container
        )
        self._client = EventHubConsumerClient.from_connection_string(
            self._connection_string,
            consumer_group=self._consumer_group,
            checkpoint_store=self._checkpoints,
            load_balancing_interval=self._balance_every,
            partition_ownership_expiration_interval=self._ownership_expiry,
        )
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    async def run(self, handle: BatchHandler) -> None:
        """Hand every event to `handle` in batches, checkpointing after each, until `close`.

        A partition without a checkpoint is read from the start of its retention. An
        exception from `handle` is raised from here once the client is closed.
        """
        client = self._client
        if client is None:
            raise RuntimeError("the reader is not open")
        failure: list[BaseException] = []

        async def on_batch(context: Any, events: list[Any]) -> None:
            if not events or self._stopping:
                return  # after an unsettled batch nothing may be checkpointed past it
            partition = context.partition_id
            try:
                settled = await handle(partition, [hub_event(partition, e) for e in events])
            except Exception as exc:
                failure.append(exc)
                settled = False
            if not settled:
                self._stopping = True
                self._closer = asyncio.create_task(self.close(), name="azure.events.close")
                return
            await context.update_checkpoint(events[-1])

        receiving = self._receiving = asyncio.create_task(
            client.receive_batch(
                on_batch,
                max_batch_size=self._max_batch,
                starting_position="-1",
                on_error=self._on_error,
                on_partition_initialize=self._on_initialize,
                on_partition_close=self._on_close,
            ),
            name="azure.events.receive",
        )
        try:
            await asyncio.wait({receiving})  # `close` may cancel it: that is a normal end
        finally:
            if not receiving.done():
                receiving.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await receiving
        if not receiving.cancelled() and (error := receiving.exception()) is not None:
            raise error
        if self._closer is not None:
            await self._closer
        if failure:
            raise failure[0]

    async def _on_error(self, context: Any, error: Exception) -> None:
        self.last_error = f"{type(error).__name__}: {error}"
        partition = getattr(context, "partition_id", None)
        log.warning("azure.events_error", partition=partition, error=self.last_error)

    async def _on_initialize(self, context: Any) -> None:
        self.partitions.add(context.partition_id)
        self.last_error = ""

    async def _on_close(self, context: Any, _reason: Any) -> None:
        self.partitions.discard(context.partition_id)

    async def close(self) -> None:
        """Stop reading; batches not settled by then are read again next time."""
        self._stopping = True
        client, self._client = self._client, None
        if client is not None:
            await client.close()
        # The SDK's close stops the partitions but not its load-balancing loop, which ends
        # its round (a blob call, then a 5 s sleep) afterwards: with the checkpoint store
        # closed below, that call would open a new HTTP session and leak it.
        receiving = self._receiving
        if receiving is not None and not receiving.done():
            receiving.cancel()
            await asyncio.wait({receiving})
        checkpoints, self._checkpoints = self._checkpoints, None
        if checkpoints is not None:
            await checkpoints.close()
