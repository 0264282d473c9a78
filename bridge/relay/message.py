"""What the relay sends to IoT Hub for one AWS telemetry message: pure, no I/O."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime

from bridge.mapping.topics import topic_properties

__all__ = [
    "BLOCK_BYTES",
    "MAX_MESSAGE_BYTES",
    "RECEIVED_AT_PROPERTY",
    "RelayMessage",
    "blocks",
    "build_message",
    "stable_message_id",
]

MAX_MESSAGE_BYTES = 256 * 1024  # IoT Hub's D2C limit, body and properties together
BLOCK_BYTES = 4 * 1024  # IoT Hub counts D2C messages in 4 KB blocks toward the daily quota
RECEIVED_AT_PROPERTY = "awsReceivedAt"


@dataclass(frozen=True, slots=True)
class RelayMessage:
    """One device-to-cloud message, ready for the relay module's connection."""

    device_id: str
    body: bytes
    message_id: str
    properties: dict[str, str]
    content_type: str | None
    content_encoding: str | None

    @property
    def size(self) -> int:
        """Bytes IoT Hub counts against its 256 KB limit: body, property names and values."""
        props = sum(len(k.encode()) + len(v.encode()) for k, v in self.properties.items())
        return len(self.body) + props + len(self.message_id) + len(self.content_type or "")


def stable_message_id(device_id: str, topic: str, payload: bytes) -> str:
    """A message id that is the same every time AWS delivers the same PUBLISH.

    AWS redelivers an unacknowledged QoS 1 message, after a bridge restart too, with the same
    topic and payload but a new packet id, and MQTT carries no publish time or message id of
    its own; so the id hashes what is stable: device, topic and payload bytes. The price:
    two publishes with byte-identical payloads on the same topic share an id, and consumers
    that deduplicate by id keep one; payloads with a timestamp or sequence number (nearly
    all telemetry) never collide.
    """
    digest = hashlib.sha256()
    for part in (device_id.encode(), topic.encode(), payload):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()[:32]


def _is_json(payload: bytes) -> bool:
    if not payload or payload[:1] not in b'{["-0123456789tfn ':
        return False
    try:
        json.loads(payload)
    except ValueError:  # UnicodeDecodeError is one
        return False
    return True


def build_message(device_id: str, topic: str, payload: bytes, received_at: float) -> RelayMessage:
    """The message for `payload` published on `topic`, received at `received_at` (epoch s).

    The body is the original bytes; JSON gets `application/json` and `utf-8` so routing
    queries can use `$body`; the `awsTopic*` properties let the plan's routes match.
    """
    properties = topic_properties(topic)
    properties[RECEIVED_AT_PROPERTY] = (
        datetime.fromtimestamp(received_at, UTC).isoformat(timespec="milliseconds")
    ).replace("+00:00", "Z")
    is_json = _is_json(payload)
    return RelayMessage(
        device_id=device_id,
        body=payload,
        message_id=stable_message_id(device_id, topic, payload),
        properties=properties,
        content_type="application/json" if is_json else None,
        content_encoding="utf-8" if is_json else None,
    )


def blocks(size: int) -> int:
    """How many messages of the daily quota a message of `size` bytes spends."""
    return max(1, -(-size // BLOCK_BYTES))
