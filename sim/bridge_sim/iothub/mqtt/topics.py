"""IoT Hub's MQTT topic space: what a device may publish to and subscribe to.

Device and module ids appear in topics unencoded (the SDK never encodes them); everything
in a property bag or query string is percent-encoded, and `+` is a literal plus, so values
are decoded with `unquote`, never `unquote_plus`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from urllib.parse import quote, unquote

__all__ = [
    "DESIRED_FILTER",
    "METHODS_FILTER",
    "TWIN_RESPONSE_FILTER",
    "InboundTopic",
    "TopicKind",
    "allowed_filters",
    "c2d_filter",
    "classify",
    "encode_bag",
    "parse_bag",
]

TWIN_RESPONSE_FILTER = "$iothub/twin/res/#"
DESIRED_FILTER = "$iothub/twin/PATCH/properties/desired/#"
METHODS_FILTER = "$iothub/methods/POST/#"

_TWIN_GET = "$iothub/twin/GET/"
_TWIN_PATCH_REPORTED = "$iothub/twin/PATCH/properties/reported/"
_METHOD_RESPONSE = "$iothub/methods/res/"


class TopicKind(enum.Enum):
    TELEMETRY = "telemetry"
    TWIN_GET = "twin/GET"
    TWIN_PATCH_REPORTED = "twin/PATCH/reported"
    METHOD_RESPONSE = "methods/res"


@dataclass(frozen=True)
class InboundTopic:
    """A device publish, understood: its kind, the query or property bag, and a status."""

    kind: TopicKind
    properties: dict[str, str]
    status: int | None = None


def parse_bag(bag: str) -> dict[str, str]:
    """`a=1&%24.mid=x&flag` -> {"a": "1", "$.mid": "x", "flag": ""}; later keys win."""
    properties: dict[str, str] = {}
    for entry in bag.split("&"):
        if not entry:
            continue
        key, _, value = entry.partition("=")
        properties[unquote(key)] = unquote(value)
    return properties


def encode_bag(properties: dict[str, str]) -> str:
    return "&".join(
        f"{quote(key, safe='')}={quote(value, safe='')}" for key, value in properties.items()
    )


def _topic_base(device_id: str, module_id: str | None) -> str:
    base = f"devices/{device_id}"
    return f"{base}/modules/{module_id}" if module_id else base


def c2d_filter(device_id: str) -> str:
    return f"devices/{device_id}/messages/devicebound/#"


def allowed_filters(device_id: str, module_id: str | None) -> set[str]:
    """The topic filters IoT Hub lets this identity subscribe to."""
    filters = {TWIN_RESPONSE_FILTER, DESIRED_FILTER, METHODS_FILTER}
    if module_id:
        filters.add(f"{_topic_base(device_id, module_id)}/inputs/#")
    else:
        filters.add(c2d_filter(device_id))
    return filters


def _query(rest: str) -> dict[str, str] | None:
    # `?$rid=1` after the resource path; the leading `?` is mandatory.
    if not rest.startswith("?"):
        return None
    return parse_bag(rest[1:])


def classify(topic: str, device_id: str, module_id: str | None) -> InboundTopic | None:
    """What a device's publish to `topic` means, or None when IoT Hub would refuse it."""
    events = f"{_topic_base(device_id, module_id)}/messages/events/"
    if topic.startswith(events) or topic == events.rstrip("/"):
        return InboundTopic(TopicKind.TELEMETRY, parse_bag(topic[len(events) :]))
    if topic.startswith(_TWIN_GET):
        query = _query(topic[len(_TWIN_GET) :])
        return None if query is None else InboundTopic(TopicKind.TWIN_GET, query)
    if topic.startswith(_TWIN_PATCH_REPORTED):
        query = _query(topic[len(_TWIN_PATCH_REPORTED) :])
        return None if query is None else InboundTopic(TopicKind.TWIN_PATCH_REPORTED, query)
    if topic.startswith(_METHOD_RESPONSE):
        status_text, _, rest = topic[len(_METHOD_RESPONSE) :].partition("/")
        query = _query(rest)
        if query is None or not status_text.isdigit():
            return None
        return InboundTopic(TopicKind.METHOD_RESPONSE, query, int(status_text))
    return None


def twin_response_topic(status: int, request_id: str, version: int | None = None) -> str:
    topic = f"$iothub/twin/res/{status}/?$rid={quote(request_id, safe='')}"
    return topic if version is None else f"{topic}&$version={version}"


def desired_patch_topic(version: int) -> str:
    return f"$iothub/twin/PATCH/properties/desired/?$version={version}"


def method_request_topic(method_name: str, request_id: str) -> str:
    return f"$iothub/methods/POST/{quote(method_name, safe='')}/?$rid={request_id}"


def c2d_topic(device_id: str, properties: dict[str, str]) -> str:
    return f"devices/{device_id}/messages/devicebound/{encode_bag(properties)}"
