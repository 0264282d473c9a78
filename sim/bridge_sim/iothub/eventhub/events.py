"""Stored events as the AMQP messages IoT Hub's built-in endpoint delivers."""

from __future__ import annotations

import functools
import hashlib
import json
import time
from typing import TYPE_CHECKING, Any

from bridge_sim.iothub.eventhub import codec

if TYPE_CHECKING:
    from bridge_sim.iothub.eventhub.log import PartitionInfo, StoredEvent

__all__ = ["SAS_AUTH_METHOD", "event_message", "generation_id"]

SAS_AUTH_METHOD = json.dumps(
    {"scope": "device", "type": "sas", "issuer": "iothub", "acceptingIpFilterRule": None},
    separators=(",", ":"),
)


@functools.lru_cache(maxsize=4096)
def generation_id(device_id: str) -> str:
    # IoT Hub assigns an 18-digit generation id when a device identity is created; a hash of
    # the id is stable across runs, which is all a reader can rely on.
    digest = hashlib.sha256(device_id.encode()).digest()
    return str(int.from_bytes(digest[:8], "big"))[:18].rjust(18, "6")


def _annotations(event: StoredEvent) -> dict[str, Any]:
    annotations: dict[str, Any] = {
        "x-opt-sequence-number": codec.typed("long", event.sequence_number),
        "x-opt-offset": codec.typed("string", str(event.offset)),
        "x-opt-enqueued-time": codec.typed("timestamp", event.enqueued_time_ms),
        "iothub-connection-device-id": codec.typed("string", event.device_id),
        "iothub-connection-auth-method": codec.typed("string", SAS_AUTH_METHOD),
        "iothub-connection-auth-generation-id": codec.typed(
            "string", generation_id(event.device_id)
        ),
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
