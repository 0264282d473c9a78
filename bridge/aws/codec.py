"""AWS IoT MQTT messages (registry events, shadow documents, presence) into core events.

Accepts both documented variants where AWS has two (the older and newer type-association
topics). Anything else raises MalformedEvent with a reason, for the dead-letter table:
the daemon never crashes on a message it cannot read.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from bridge.core.events import (
    GroupChanged,
    MembershipChanged,
    PresenceChanged,
    ShadowChanged,
    SourceEvent,
    ThingChanged,
    ThingTypeChanged,
)
from bridge.errors import MalformedEvent

__all__ = ["SUBSCRIPTIONS", "decode"]

# What the bridge subscribes to on AWS (the shadow documents carry both states).
SUBSCRIPTIONS = (
    "$aws/events/thing/+/+",
    "$aws/events/thingGroup/+/+",
    "$aws/events/thingType/+/+",
    "$aws/events/thingGroupMembership/#",
    "$aws/events/thingGroupHierarchy/#",
    "$aws/events/thingTypeAssociation/#",
    "$aws/events/presence/+/+",
    "$aws/things/+/shadow/update/documents",
    "$aws/things/+/shadow/name/+/update/documents",
    "$aws/things/+/shadow/delete/accepted",
    "$aws/things/+/shadow/name/+/delete/accepted",
)


def _no_constant(name: str) -> Any:
    # json accepts NaN and Infinity, which are not JSON and which no twin can hold.
    raise ValueError(f"{name} is not JSON")


def _body(topic: str, payload: bytes) -> dict[str, Any]:
    try:
        body = json.loads(payload, parse_constant=_no_constant)
    # ValueError covers UnicodeDecodeError and integers too long to convert; a deeply
    # nested document exhausts the parser's recursion instead.
    except (ValueError, RecursionError) as exc:
        raise MalformedEvent(topic, "payload is not JSON") from exc
    if not isinstance(body, dict):
        raise MalformedEvent(topic, "payload is not a JSON object")
    return body


def _name(topic: str, value: Any, what: str) -> str:
    """A thing, group, type or shadow name, from the body or the topic: a non-empty string."""
    if not isinstance(value, str) or not value:
        raise MalformedEvent(topic, f"{what} is not a non-empty string")
    return value


def _text(topic: str, body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise MalformedEvent(topic, f"'{key}' is not a string")
    return value


def _object(topic: str, state: dict[str, Any], key: str) -> dict[str, Any] | None:
    value = state.get(key)
    if value is not None and not isinstance(value, dict):
        raise MalformedEvent(topic, f"'current.state.{key}' is not an object")
    return value


def _int(topic: str, body: dict[str, Any], key: str, *, required: bool = False) -> int | None:
    value = body.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise MalformedEvent(topic, f"'{key}' is not an integer")
    return value


def _attributes(topic: str, body: dict[str, Any]) -> dict[str, str]:
    attributes = body.get("attributes") or {}
    if not isinstance(attributes, dict) or not all(isinstance(v, str) for v in attributes.values()):
        raise MalformedEvent(topic, "'attributes' is not a map of strings")
    return attributes


def _thing(topic: str, parts: list[str], body: dict[str, Any]) -> ThingChanged:
    operation = body.get("operation", parts[-1].upper())
    return ThingChanged(
        device_id=_name(topic, body.get("thingName", parts[3]), "the thing name"),
        version=_int(topic, body, "versionNumber"),
        deleted=operation == "DELETED",
        thing_type=_text(topic, body, "thingTypeName"),
        attributes=_attributes(topic, body),
        at_ms=_int(topic, body, "timestamp"),
    )


def _shadow_topic(parts: list[str]) -> bool:
    # $aws/things/{thing}/shadow/{op}/{what}, or .../shadow/name/{shadow}/{op}/{what}
    return len(parts) == 6 or (len(parts) == 8 and parts[4] == "name")


def _shadow_name(topic: str, parts: list[str]) -> str | None:
    return _name(topic, parts[5], "the shadow name") if parts[4] == "name" else None


def _shadow_document(topic: str, parts: list[str], body: dict[str, Any]) -> ShadowChanged:
    name = _shadow_name(topic, parts)
    current = body.get("current")
    if not isinstance(current, dict):
        raise MalformedEvent(topic, "documents message without 'current'")
    state = current.get("state") or {}
    if not isinstance(state, dict):
        raise MalformedEvent(topic, "'current.state' is not an object")
    timestamp = body.get("timestamp")
    return ShadowChanged(
        device_id=_name(topic, parts[2], "the thing name"),
        shadow=name,
        version=_int(topic, current, "version", required=True) or 0,
        desired=_object(topic, state, "desired"),
        reported=_object(topic, state, "reported"),
        at_ms=timestamp * 1000
        if isinstance(timestamp, int) and not isinstance(timestamp, bool)
        else None,
    )


def _shadow_deleted(topic: str, parts: list[str], body: dict[str, Any]) -> ShadowChanged:
    name = _shadow_name(topic, parts)
    return ShadowChanged(
        device_id=_name(topic, parts[2], "the thing name"),
        shadow=name,
        version=_int(topic, body, "version", required=True) or 0,
        deleted=True,
    )


def _presence(topic: str, parts: list[str], body: dict[str, Any]) -> PresenceChanged:
    # $aws/events/presence/connected|disconnected/{clientId}
    if len(parts) != 5:
        raise MalformedEvent(topic, "unexpected presence topic")
    if parts[3] not in ("connected", "disconnected"):
        raise MalformedEvent(topic, f"unknown presence event {parts[3]!r}")
    return PresenceChanged(
        device_id=_name(topic, body.get("clientId", parts[4]), "the client id"),
        connected=parts[3] == "connected",
        version=_int(topic, body, "versionNumber"),
        reason=_text(topic, body, "disconnectReason"),
        at_ms=_int(topic, body, "timestamp"),
    )


def _membership(topic: str, parts: list[str], body: dict[str, Any]) -> MembershipChanged:
    # $aws/events/thingGroupMembership/thingGroup/{g}/thing/{t}/added|removed
    if len(parts) != 8 or parts[3] != "thingGroup" or parts[5] != "thing":
        raise MalformedEvent(topic, "unexpected membership topic")
    operation = body.get("operation", parts[7].upper())
    return MembershipChanged(
        device_id=_name(topic, parts[6], "the thing name"),
        group=_name(topic, parts[4], "the group name"),
        added=operation == "ADDED",
        at_ms=_int(topic, body, "timestamp"),
    )


def _association(topic: str, parts: list[str], body: dict[str, Any]) -> ThingChanged:
    # Older: .../thingTypeAssociation/thing/{thing}/{type}; newer adds thingType/.../added|removed.
    if len(parts) < 6 or parts[3] != "thing":
        raise MalformedEvent(topic, "unexpected type association topic")
    operation = str(body.get("operation", parts[-1].upper()))
    removed = operation in ("DELETED", "REMOVED")
    thing_type = _text(topic, body, "thingTypeName") or (parts[5] if len(parts) == 6 else parts[6])
    # Registry truth comes from DescribeThing: this only says "re-read this thing".
    return ThingChanged(
        device_id=_name(topic, body.get("thingName", parts[4]), "the thing name"),
        version=None,
        thing_type=None if removed else thing_type,
        attributes={},
        at_ms=_int(topic, body, "timestamp"),
    )


def _group(topic: str, parts: list[str], body: dict[str, Any]) -> GroupChanged:
    operation = body.get("operation", parts[-1].upper())
    return GroupChanged(
        group=_name(topic, body.get("thingGroupName", parts[3]), "the group name"),
        parent=_text(topic, body, "parentGroupName"),
        deleted=operation == "DELETED",
        version=_int(topic, body, "versionNumber"),
        at_ms=_int(topic, body, "timestamp"),
    )


def _hierarchy(topic: str, parts: list[str], body: dict[str, Any]) -> GroupChanged:
    # $aws/events/thingGroupHierarchy/thingGroup/{parent}/childThingGroup/{child}/added|removed
    if len(parts) != 8 or parts[3] != "thingGroup" or parts[5] != "childThingGroup":
        raise MalformedEvent(topic, "unexpected hierarchy topic")
    added = body.get("operation", parts[7].upper()) == "ADDED"
    return GroupChanged(
        group=_name(topic, parts[6], "the group name"),
        parent=_name(topic, parts[4], "the group name") if added else None,
        at_ms=_int(topic, body, "timestamp"),
    )


def _thing_type(topic: str, parts: list[str], body: dict[str, Any]) -> ThingTypeChanged:
    operation = body.get("operation", parts[-1].upper())
    return ThingTypeChanged(
        thing_type=_name(topic, body.get("thingTypeName", parts[3]), "the thing type name"),
        deprecated=bool(body.get("isDeprecated")),
        deleted=operation == "DELETED",
        at_ms=_int(topic, body, "timestamp"),
    )


_EVENTS: dict[str, Callable[[str, list[str], dict[str, Any]], SourceEvent]] = {
    "thing": _thing,
    "thingGroup": _group,
    "thingType": _thing_type,
    "thingGroupMembership": _membership,
    "thingGroupHierarchy": _hierarchy,
    "thingTypeAssociation": _association,
    "presence": _presence,
}


def decode(topic: str, payload: bytes) -> SourceEvent:
    """The core event a message on one of SUBSCRIPTIONS stands for."""
    parts = topic.split("/")
    body = _body(topic, payload)
    if parts[:2] == ["$aws", "events"] and len(parts) >= 4:
        handler = _EVENTS.get(parts[2])
        if handler is not None:
            return handler(topic, parts, body)
    elif parts[:2] == ["$aws", "things"] and parts[3:4] == ["shadow"] and _shadow_topic(parts):
        if parts[-2:] == ["update", "documents"]:
            return _shadow_document(topic, parts, body)
        if parts[-2:] == ["delete", "accepted"]:
            return _shadow_deleted(topic, parts, body)
    raise MalformedEvent(topic, "not a topic the bridge understands")
