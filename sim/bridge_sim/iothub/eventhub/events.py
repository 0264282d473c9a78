"""Stored events as the AMQP messages IoT Hub's built-in endpoint delivers."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from bridge_sim.iothub.eventhub import codec

if TYPE_CHECKING:
    from bridge_sim.iothub.eventhub.log import PartitionInfo, StoredEvent

__all__ = ["event_message"]


def _annotations(event: StoredEvent) -> dict[str, Any]:
    annotations: dict[str, Any] = {
        "x-opt-sequence-number": codec.typed("long", event.sequence_number),
        "x-opt-offset": codec.typed("string", str(event.offset)),
        "x-opt-enqueued-time": codec.typed("timestamp", event.enqueued_time_ms),
        "iothub-connection-device-id": codec.typed("string", event.device_id),
        "iothub-enqueuedtime": codec.typed("timestamp", event.enqueued_time_ms),
        "iothub-message-source": codec.typed("string", event.message_source),
    }
    if event.module_id:
        annotations["iothub-connection-module-id"] = codec.typed("string", event.module_id)
    for key, value in event.extra_annotations.items():
        annotations[key] = codec.typed("string", value) if isinstance(value, str) else value
    return annotations


def _runtime_metrics(last: PartitionInfo) -> dict[str, Any]:
    return {
        "last_enqueued_sequence_number": codec.typed("long", last.last_enqueued_sequence_number),
        "last_enqueued_offset": codec.typed("string", last.last_enqueued_offset),
        "last_enqueued_time_utc": codec.typed("timestamp", last.last_enqueued_time_ms),
        "runtime_info_retrieval_time_utc": codec.typed("timestamp", int(time.time() * 1000)),
    }


def event_message(event: StoredEvent, *, last_enqueued: PartitionInfo | None = None) -> Any:
    """The `Message` for one event; `last_enqueued` adds the partition's runtime metrics."""
    properties = codec.Properties(
        message_id=event.message_id,
        user_id=event.user_id.encode() if event.user_id else None,
        correlation_id=event.correlation_id,
        content_type=event.content_type,
        content_encoding=event.content_encoding,
    )
    return codec.Message(
        delivery_annotations=_runtime_metrics(last_enqueued) if last_enqueued else None,
        data=[event.body],
        message_annotations=_annotations(event),
        properties=properties if any(properties) else None,
        application_properties=dict(event.properties) or None,
    )
