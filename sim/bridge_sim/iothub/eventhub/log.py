"""The built-in events endpoint's storage: partitioned, append-only, bounded.

Each partition numbers its events from 0 and gives each an offset, the byte position of
the event in the partition as Event Hubs reports it (a decimal string). One device's
events always land in the same partition, so they stay in order.

Retention: a partition keeps at most `max_events_per_partition` events (plus up to a tenth
more, trimmed in batches so appends stay cheap); the oldest go first and
`begin_sequence_number` moves on, as when Event Hubs' retention period expires.

Readers await `wait_for`, or `listen` with an event, instead of polling. The log is not
thread-safe: append from the event loop its readers run on (`loop.call_soon_threadsafe`
from another thread).
"""

from __future__ import annotations

import asyncio
import bisect
import datetime as dt
import hashlib
import itertools
import json
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["EventLog", "PartitionInfo", "StoredEvent"]

DEFAULT_PARTITION_COUNT = 4
DEFAULT_RETENTION = 1_000_000
_EMPTY: Mapping[str, Any] = {}


@dataclass(frozen=True)
class StoredEvent:
    """One event as the built-in endpoint stores it."""

    partition: int
    sequence_number: int
    offset: int
    enqueued_time_ms: int
    body: bytes
    device_id: str
    module_id: str | None = None
    message_source: str = "Telemetry"
    properties: Mapping[str, str] = field(default_factory=dict)
    message_id: str | None = None
    correlation_id: str | None = None
    content_type: str | None = None
    content_encoding: str | None = None
    user_id: str | None = None
    extra_annotations: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PartitionInfo:
    """What `com.microsoft:partition` READ reports about one partition."""

    partition: int
    begin_sequence_number: int
    last_enqueued_sequence_number: int
    last_enqueued_offset: str
    last_enqueued_time_ms: int
    is_empty: bool


class _Partition:
    """One partition's events and the signal readers wait on."""

    def __init__(self) -> None:
        self.events: list[StoredEvent] = []
        self.offsets: list[int] = []
        self.begin_sequence_number = 0
        self.next_sequence_number = 0
        self.next_offset = 0
        self.changed = asyncio.Event()
        # Pumps that want a plain set() per append, without a task per wait.
        self.listeners: set[asyncio.Event] = set()

    def index_of(self, sequence_number: int) -> int:
        return max(0, sequence_number - self.begin_sequence_number)


class EventLog:
    """N partitions of telemetry and lifecycle events, readable by sequence number."""

    def __init__(
        self,
        *,
        partition_count: int = DEFAULT_PARTITION_COUNT,
        max_events_per_partition: int = DEFAULT_RETENTION,
        hub_name: str = "iothub",
    ) -> None:
        if partition_count < 1:
            raise ValueError("partition_count must be at least 1")
        if max_events_per_partition < 1:
            raise ValueError("max_events_per_partition must be at least 1")
        self.partition_count = partition_count
        self.max_events_per_partition = max_events_per_partition
        self.hub_name = hub_name
        self.created_at_ms = int(time.time() * 1000)
        self._partitions = [_Partition() for _ in range(partition_count)]
        self._connection_state_counter = itertools.count(1)

    def partition_for(self, device_id: str) -> int:
        """The partition a device's events go to: a stable hash, the same in every process."""
        digest = hashlib.sha256(device_id.encode()).digest()
        return int.from_bytes(digest[:8], "big") % self.partition_count

    def append(
        self,
        *,
        body: bytes,
        device_id: str,
        module_id: str | None = None,
        message_source: str = "Telemetry",
        properties: Mapping[str, str] = _EMPTY,
        message_id: str | None = None,
        correlation_id: str | None = None,
        content_type: str | None = None,
        content_encoding: str | None = None,
        user_id: str | None = None,
        extra_annotations: Mapping[str, Any] = _EMPTY,
    ) -> StoredEvent:
        """Store an event in its device's partition and wake the readers waiting there."""
        number = self.partition_for(device_id)
        partition = self._partitions[number]
        event = StoredEvent(
            partition=number,
            sequence_number=partition.next_sequence_number,
            offset=partition.next_offset,
            enqueued_time_ms=self._enqueue_time(partition),
            body=bytes(body),
            device_id=device_id,
            module_id=module_id,
            message_source=message_source,
            properties=dict(properties),
            message_id=message_id,
            correlation_id=correlation_id,
            content_type=content_type,
            content_encoding=content_encoding,
            user_id=user_id,
            extra_annotations=dict(extra_annotations),
        )
        partition.events.append(event)
        partition.offsets.append(event.offset)
        partition.next_sequence_number += 1
        # Offsets are byte positions; an empty body still moves the next one on.
        partition.next_offset += max(1, len(event.body))
        self._trim(partition)
        signal, partition.changed = partition.changed, asyncio.Event()
        signal.set()
        for listener in partition.listeners:
            listener.set()
        return event

    def append_connection_state(
        self, device_id: str, module_id: str | None, connected: bool
    ) -> StoredEvent:
        """Store a `deviceConnectionStateEvents` event, as IoT Hub routes them by default."""
        counter = next(self._connection_state_counter)
        # IoT Hub's sequenceNumber is an opaque, increasing 64-digit hex string.
        sequence = f"{time.time_ns():032X}{counter:032X}"
        properties = {
            "hubName": self.hub_name,
            "deviceId": device_id,
            "opType": "deviceConnected" if connected else "deviceDisconnected",
            "iothub-message-schema": "deviceConnectionStateNotification",
            "operationTimestamp": dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z"),
        }
        if module_id:
            properties["moduleId"] = module_id
        return self.append(
            body=json.dumps({"sequenceNumber": sequence}).encode(),
            device_id=device_id,
            module_id=module_id,
            message_source="deviceConnectionStateEvents",
            properties=properties,
            content_type="application/json",
            content_encoding="utf-8",
        )

    def append_twin_change(
        self, device_id: str, module_id: str | None, op_type: str, body: Mapping[str, Any]
    ) -> StoredEvent:
        """Store a `twinChangeEvents` event, as a route for TwinChangeEvents delivers it.

        The body is the change (a patch of tags, desired or reported with the section's new
        `$version`, or the whole replaced sections) and the twin's `version`.
        """
        properties = {
            "hubName": self.hub_name,
            "deviceId": device_id,
            "opType": op_type,
            "iothub-message-schema": "twinChangeNotification",
            "operationTimestamp": dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z"),
        }
        if module_id:
            properties["moduleId"] = module_id
        return self.append(
            body=json.dumps(body, separators=(",", ":")).encode(),
            device_id=device_id,
            module_id=module_id,
            message_source="twinChangeEvents",
            properties=properties,
            content_type="application/json",
            content_encoding="utf-8",
        )

    def retained(self) -> Iterator[StoredEvent]:
        """Every event still retained, partition by partition, each in order."""
        for stored in self._partitions:
            yield from list(stored.events)

    def read(self, partition: int, from_sequence: int, max_count: int) -> list[StoredEvent]:
        """Up to `max_count` events with sequence numbers from `from_sequence` on."""
        stored = self._partition(partition)
        start = stored.index_of(from_sequence)
        return stored.events[start : start + max(0, max_count)]

    def first_sequence_after_offset(self, partition: int, offset: int, *, inclusive: bool) -> int:
        """The first sequence number whose offset is greater than (or equal to) `offset`."""
        stored = self._partition(partition)
        find = bisect.bisect_left if inclusive else bisect.bisect_right
        return stored.begin_sequence_number + find(stored.offsets, offset)

    def first_sequence_after_time(self, partition: int, time_ms: int, *, inclusive: bool) -> int:
        """The first sequence number enqueued after (or at) `time_ms`."""
        stored = self._partition(partition)
        find = bisect.bisect_left if inclusive else bisect.bisect_right
        index = find(stored.events, time_ms, key=lambda event: event.enqueued_time_ms)
        return stored.begin_sequence_number + index

    def begin_sequence_number(self, partition: int) -> int:
        """The oldest sequence number still retained."""
        return self._partition(partition).begin_sequence_number

    def next_sequence_number(self, partition: int) -> int:
        """The sequence number the next event in `partition` will get."""
        return self._partition(partition).next_sequence_number

    async def wait_for(self, partition: int, sequence_number: int) -> None:
        """Return once `partition` holds an event numbered `sequence_number` or later."""
        stored = self._partition(partition)
        while stored.next_sequence_number <= sequence_number:
            await stored.changed.wait()

    def listen(self, partition: int, wakeup: asyncio.Event) -> None:
        """Have every append to `partition` set `wakeup` until `unlisten`."""
        self._partition(partition).listeners.add(wakeup)

    def unlisten(self, partition: int, wakeup: asyncio.Event) -> None:
        """Stop setting `wakeup` on appends to `partition`."""
        self._partition(partition).listeners.discard(wakeup)

    def partition_info(self, partition: int) -> PartitionInfo:
        """Begin and last-enqueued figures for the management node."""
        stored = self._partition(partition)
        last = stored.events[-1] if stored.events else None
        return PartitionInfo(
            partition=partition,
            begin_sequence_number=stored.begin_sequence_number,
            last_enqueued_sequence_number=last.sequence_number if last else -1,
            last_enqueued_offset=str(last.offset) if last else "-1",
            last_enqueued_time_ms=last.enqueued_time_ms if last else 0,
            is_empty=last is None,
        )

    @staticmethod
    def _enqueue_time(partition: _Partition) -> int:
        # Never earlier than the previous event, even if the wall clock steps back: readers
        # find a starting time by bisection.
        now = int(time.time() * 1000)
        return max(now, partition.events[-1].enqueued_time_ms) if partition.events else now

    def _partition(self, partition: int) -> _Partition:
        if not 0 <= partition < self.partition_count:
            raise IndexError(f"partition {partition} out of range 0..{self.partition_count - 1}")
        return self._partitions[partition]

    def _trim(self, partition: _Partition) -> None:
        slack = max(1, self.max_events_per_partition // 10)
        excess = len(partition.events) - self.max_events_per_partition
        if excess >= slack:
            del partition.events[:excess]
            del partition.offsets[:excess]
            partition.begin_sequence_number += excess
