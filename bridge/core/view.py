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

__all__ = ["CLASSIC", "DeviceView", "Merged", "ShadowView", "adopt", "fold", "merge"]

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
    not undo a newer one. `deleted_shadows` remembers, per deleted shadow, its version at
    the delete: a full read showing it at or below that version may predate the delete.
    `previous_version` is the highest version earlier things of the same name reached before
    this one was created: a read at or below it may be of one of them.
    """

    device_id: str
    exists: bool = True
    thing_version: int | None = None
    thing_type: str | None = None
    attributes: Mapping[str, str] = field(default_factory=dict)
    groups: frozenset[str] = frozenset()
    shadows: Mapping[str, ShadowView] = field(default_factory=dict)
    membership_ms: Mapping[str, int] = field(default_factory=dict, compare=False)
    deleted_shadows: Mapping[str, int] = field(default_factory=dict)
    previous_version: int | None = None

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
            "deleted_shadows": dict(self.deleted_shadows),
            "previous_version": self.previous_version,
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
            deleted_shadows={
                name: int(version) for name, version in (data.get("deleted_shadows") or {}).items()
            },
            previous_version=data.get("previous_version"),
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
            previous_version=_highest(view) if recreated else view.previous_version,
        )
    return None if after == view else after


def _shadow(view: DeviceView, event: ShadowChanged) -> DeviceView | None:
    name = event.shadow or CLASSIC
    current = view.shadows.get(name)
    if event.deleted:
        if current is None or event.version < current.version:
            return None  # nothing to delete, or a delete older than the shadow
    elif current is not None and event.version <= current.version:
        return None  # a duplicate, or older than the shadow
    # An update after a delete is taken whatever its version: AWS continues a shadow
    # created again within 48 hours from the deleted one's version, and starts over at 0
    # after that. The tombstone only makes a later full read ask again (`merge`).
    shadows = {key: value for key, value in view.shadows.items() if key != name}
    tombstones = {key: value for key, value in view.deleted_shadows.items() if key != name}
    if event.deleted:
        tombstones[name] = event.version
    else:
        shadows[name] = ShadowView(event.version, event.desired or {}, event.reported or {})
    return replace(view, shadows=shadows, deleted_shadows=tombstones)


def _membership(view: DeviceView, event: MembershipChanged) -> DeviceView | None:
    at = event.at_ms or 0
    last = view.membership_ms.get(event.group)
    if last is not None and at < last:
        return None
    groups = view.groups | {event.group} if event.added else view.groups - {event.group}
    if groups == view.groups and last is not None and at == last:
        return None
    return replace(view, groups=groups, membership_ms={**view.membership_ms, event.group: at})


@dataclass(frozen=True, slots=True)
class Merged:
    """A full read folded into a stored view.

    `unsure`: the read contradicts the stored view where versions cannot say which is newer
    (a thing the store has as deleted, a shadow the read lacks). The stored side is kept,
    the safe choice, and only a read started after this fold can settle it (`adopt`).
    """

    view: DeviceView | None  # None: the read changes nothing
    unsure: bool = False


def merge(
    stored: DeviceView | None,
    fresh: DeviceView,
    read_at_ms: int,
    *,
    last_read_ms: int | None = None,
) -> Merged:
    """Fold a full read of the source (started at `read_at_ms`) into the stored view.

    `last_read_ms`: when the newest read already folded into `stored` started, if known.

    Versions decide for the thing and each shadow, so events that arrived while the read
    was in flight are not undone; membership events newer than the read win over it.
    Where versions cannot decide, the stored view is kept and the result says `unsure`.
    A read started before one already folded in adds only what versions prove newer.
    """
    if stored is None:
        return Merged(fresh)
    older = last_read_ms is not None and read_at_ms < last_read_ms
    thing_newer, unsure = _thing_order(stored, fresh, older=older)
    base = fresh if thing_newer else stored
    if not base.exists:
        # A read that found no thing knows no version: the delete's stays, with what the
        # thing had, so neither a late event nor a stale read of it brings it back.
        version = base.thing_version or stored.thing_version
        base = replace(stored, exists=False, thing_version=version)
    shadows, tombstones, doubt = _merge_shadows(stored, fresh, older=older)
    if older:
        late, groups = dict(stored.membership_ms), set(stored.groups)
    else:
        late = {g: at for g, at in stored.membership_ms.items() if at > read_at_ms}
        groups = {g for g in fresh.groups if g not in late}
        groups |= {g for g in late if g in stored.groups}
    after = replace(
        base,
        shadows=shadows,
        deleted_shadows=tombstones,
        groups=frozenset(groups) if base.exists else frozenset(),
        membership_ms=late,
        previous_version=stored.previous_version,  # a read cannot know earlier lives
    )
    # Shadows of a thing that does not exist are not mirrored: no reason to read again.
    unsure = unsure or (doubt and after.exists)
    return Merged(None if after == stored else after, unsure)


def _thing_order(stored: DeviceView, fresh: DeviceView, *, older: bool) -> tuple[bool, bool]:
    """Whether the read's thing is newer than the stored one, and whether that is unsure.

    Versions order a thing's changes only within one life of it: a thing deleted and
    created again starts over at 1. So a read that disagrees with the store on whether
    the thing exists, or that is older than it, may be from another life than the stored
    one: the stored side is kept, and the read asked again. A read at or below the highest
    version of an earlier life may be of that life. A read started before one already
    folded in is older, whatever its version says, and not worth asking again.
    """
    if older:
        return False, False
    if fresh.exists and not stored.exists:
        # Newer only if above every earlier life's last version: a read from before the
        # delete has at most that.
        newer = _version_above(fresh, _highest(stored))
        return newer, not newer
    if stored.exists and not fresh.exists:
        return False, True  # deleted since, or read before it was created again
    if fresh.thing_version is None or stored.thing_version is None:
        return True, False
    # Below the stored version: an older read, or a life begun since the events stopped.
    # At or below an earlier life's highest version: possibly that life's.
    newer = fresh.thing_version >= stored.thing_version and _version_above(
        fresh, stored.previous_version
    )
    return newer, not newer


def _highest(view: DeviceView) -> int | None:
    """The highest version any life of this thing reached, as far as the view knows."""
    known = [v for v in (view.thing_version, view.previous_version) if v is not None]
    return max(known) if known else None


def _version_above(view: DeviceView, version: int | None) -> bool:
    return version is None or (view.thing_version is not None and view.thing_version > version)


def _merge_shadows(
    stored: DeviceView, fresh: DeviceView, *, older: bool
) -> tuple[dict[str, ShadowView], dict[str, int], bool]:
    """Per shadow, the newer of the two; plus the tombstones kept and whether any is unsure.

    A shadow only one side has cannot be ordered by versions (the read may predate its
    creation or its delete), unless a tombstone's version proves the read's newer.
    """
    shadows = dict(stored.shadows)
    tombstones = dict(stored.deleted_shadows)
    unsure = False
    for name, theirs in fresh.shadows.items():
        mine = stored.shadows.get(name)
        gone = stored.deleted_shadows.get(name)
        if mine is not None:
            if theirs.version > mine.version:
                shadows[name] = theirs
        elif gone is not None and theirs.version > gone:
            shadows[name] = theirs  # created again after the delete folded in
            del tombstones[name]
        elif older:
            continue  # a newer read or event already said it was not there
        elif gone is not None:
            unsure = True  # read before its delete, or created again after AWS forgot it
        else:
            shadows[name] = theirs  # created while no event reached the bridge
    if not older and any(name not in fresh.shadows for name in stored.shadows):
        unsure = True  # created after the read listed the shadows, or deleted since
    return shadows, tombstones, unsure


def adopt(stored: DeviceView | None, fresh: DeviceView) -> DeviceView | None:
    """Take a read started after `stored` was committed, with nothing folded in since.

    Such a read is newer than everything stored, so it settles what `merge` was unsure of:
    what it lacks is gone (a deleted shadow keeps its version as a tombstone), what it has
    exists. Return None when nothing changes.
    """
    if stored is None:
        return fresh
    tombstones = dict(stored.deleted_shadows)
    for name, mine in stored.shadows.items():
        if fresh.exists and name not in fresh.shadows:
            tombstones[name] = max(mine.version, tombstones.get(name, 0))
    for name in fresh.shadows:
        tombstones.pop(name, None)
    if fresh.exists:
        after = replace(fresh, deleted_shadows=tombstones)
    else:
        # No thing: the read says nothing of its shadows (they outlive the thing on AWS),
        # and the deleted thing keeps its version, so a late event of it stays stale.
        version = fresh.thing_version or stored.thing_version
        after = replace(stored, exists=False, thing_version=version, groups=frozenset())
    return None if after == stored else after
