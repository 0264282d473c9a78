"""What the bridge knows of one device on the source side, and how events change it.

Pure: no I/O and no clock. The engine keeps one `DeviceView` per device in the store,
folds each source event into it with `fold`, and the target side turns the view into an
identity and a twin. Because the view is the whole state (not a diff), applying it twice,
late or after a crash gives the same result: that is what makes every write idempotent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from bridge.core.events import DeviceEvent, MembershipChanged, ShadowChanged, ThingChanged

__all__ = ["CLASSIC", "DeviceView", "ShadowView", "fold", "merge"]

CLASSIC = ""
"""The classic (unnamed) shadow's key in `DeviceView.shadows`."""


@dataclass(frozen=True, slots=True)
class ShadowView:
    """One shadow's state at `version` (desired and reported as AWS holds them)."""

    version: int
    desired: Mapping[str, Any] = field(default_factory=dict)
    reported: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"version": self.version, "desired": self.desired, "reported": self.reported}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ShadowView:
        return cls(int(data["version"]), data.get("desired") or {}, data.get("reported") or {})


@dataclass(frozen=True, slots=True)
class DeviceView:
    """The source-side truth about one device, as far as the bridge has seen it.

    `membership_ms` remembers, per group, the time of the newest membership event applied,
    because membership events carry no version: an older add or remove arriving late must
    not undo a newer one.
    """

    device_id: str
    exists: bool = True
    thing_version: int | None = None
    thing_type: str | None = None
    attributes: Mapping[str, str] = field(default_factory=dict)
    groups: frozenset[str] = frozenset()
    shadows: Mapping[str, ShadowView] = field(default_factory=dict)
    membership_ms: Mapping[str, int] = field(default_factory=dict, compare=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "device_id": self.device_id,
            "exists": self.exists,
            "thing_version": self.thing_version,
            "thing_type": self.thing_type,
            "attributes": dict(self.attributes),
            "groups": sorted(self.groups),
            "shadows": {name: shadow.to_json() for name, shadow in sorted(self.shadows.items())},
            "membership_ms": dict(self.membership_ms),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DeviceView:
        return cls(
            device_id=str(data["device_id"]),
            exists=bool(data.get("exists", True)),
            thing_version=data.get("thing_version"),
            thing_type=data.get("thing_type"),
            attributes=dict(data.get("attributes") or {}),
            groups=frozenset(data.get("groups") or ()),
            shadows={
                name: ShadowView.from_json(shadow)
                for name, shadow in (data.get("shadows") or {}).items()
            },
            membership_ms=dict(data.get("membership_ms") or {}),
        )


def fold(view: DeviceView, event: DeviceEvent) -> DeviceView | None:
    """The view after `event`, or None when the event is stale or changes nothing."""
    if isinstance(event, ThingChanged):
        return _thing(view, event)
    if isinstance(event, ShadowChanged):
        return _shadow(view, event)
    if isinstance(event, MembershipChanged):
        return _membership(view, event)
    return None  # presence changes the migration state, not the mirrored content


def _thing(view: DeviceView, event: ThingChanged) -> DeviceView | None:
    if event.version is None:
        return None  # carries no state of its own; the engine re-reads the thing instead
    # A thing deleted and created again starts over at version 1, so versions only order
    # events while the thing exists; a late event of the old thing is left to anti-entropy.
    recreated = not view.exists and not event.deleted
    if view.thing_version is not None and event.version < view.thing_version and not recreated:
        return None
    if event.version == view.thing_version and view.exists != event.deleted:
        return None  # a duplicate of what was applied
    if event.deleted:
        # A deleted thing keeps its version, so a late UPDATED of the old thing stays stale.
        after = replace(view, exists=False, thing_version=event.version)
    else:
        after = replace(
            view,
            exists=True,
            thing_version=event.version,
            thing_type=event.thing_type,
            attributes=dict(event.attributes),
        )
    return None if after == view else after


def _shadow(view: DeviceView, event: ShadowChanged) -> DeviceView | None:
    name = event.shadow or CLASSIC
    current = view.shadows.get(name)
    if current is not None and event.version <= current.version and not event.deleted:
        return None
    if event.deleted:
        if current is None or event.version < current.version:
            return None
        shadows = {key: value for key, value in view.shadows.items() if key != name}
    else:
        shadows = {
            **view.shadows,
            name: ShadowView(event.version, event.desired or {}, event.reported or {}),
        }
    return replace(view, shadows=shadows)


def _membership(view: DeviceView, event: MembershipChanged) -> DeviceView | None:
    at = event.at_ms or 0
    last = view.membership_ms.get(event.group)
    if last is not None and at < last:
        return None
    groups = view.groups | {event.group} if event.added else view.groups - {event.group}
    if groups == view.groups and last is not None and at == last:
        return None
    return replace(view, groups=groups, membership_ms={**view.membership_ms, event.group: at})


def merge(stored: DeviceView | None, fresh: DeviceView, read_at_ms: int) -> DeviceView | None:
    """Fold a full read of the source (started at `read_at_ms`) into the stored view.

    Versions decide for the thing and each shadow, so events that arrived while the read
    was in flight are not undone; membership events newer than the read win over it.
    Return None when nothing changes.
    """
    if stored is None:
        return fresh
    thing_newer = (
        fresh.thing_version is None
        or stored.thing_version is None
        or fresh.thing_version >= stored.thing_version
        or (fresh.exists and not stored.exists)
    )
    base = fresh if thing_newer else stored
    shadows = dict(fresh.shadows)
    for name, mine in stored.shadows.items():
        theirs = fresh.shadows.get(name)
        if theirs is not None and mine.version > theirs.version:
            shadows[name] = mine
    late = {g: at for g, at in stored.membership_ms.items() if at > read_at_ms}
    groups = {g for g in fresh.groups if g not in late}
    groups |= {g for g in late if g in stored.groups}
    after = replace(
        base,
        shadows=shadows,
        groups=frozenset(groups) if base.exists else frozenset(),
        membership_ms=late,
    )
    return None if after == stored else after
