"""What happened on the source side, in terms the core understands (no AWS, no Azure).

Frozen and small: the engine routes them by `device_id` into one ordered lane per device;
group events carry no device and fan out to the group's members.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "DeviceEvent",
    "GroupChanged",
    "MembershipChanged",
    "PresenceChanged",
    "ShadowChanged",
    "SourceEvent",
    "ThingChanged",
    "ThingTypeChanged",
]


@dataclass(frozen=True)
class ThingChanged:
    """A thing was created, updated or deleted in the registry."""

    device_id: str
    version: int | None
    deleted: bool = False
    thing_type: str | None = None
    attributes: dict[str, str] = field(default_factory=dict)
    at_ms: int | None = None


@dataclass(frozen=True)
class ShadowChanged:
    """A classic (name None) or named shadow reached `version`; `deleted` when removed."""

    device_id: str
    shadow: str | None
    version: int
    desired: dict[str, Any] | None = None
    reported: dict[str, Any] | None = None
    deleted: bool = False
    at_ms: int | None = None


@dataclass(frozen=True)
class MembershipChanged:
    """A thing joined or left a static thing group."""

    device_id: str
    group: str
    added: bool
    at_ms: int | None = None


@dataclass(frozen=True)
class PresenceChanged:
    """A device's MQTT connection to the source came up or went down."""

    device_id: str
    connected: bool
    version: int | None = None
    reason: str | None = None
    at_ms: int | None = None


@dataclass(frozen=True)
class GroupChanged:
    """A thing group was created, changed, moved or deleted: its members' paths may change."""

    group: str
    parent: str | None = None
    deleted: bool = False
    version: int | None = None
    at_ms: int | None = None


@dataclass(frozen=True)
class ThingTypeChanged:
    """A thing type was created, deprecated or deleted."""

    thing_type: str
    deprecated: bool = False
    deleted: bool = False
    at_ms: int | None = None


DeviceEvent = ThingChanged | ShadowChanged | MembershipChanged | PresenceChanged
SourceEvent = DeviceEvent | GroupChanged | ThingTypeChanged
