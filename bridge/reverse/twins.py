"""Twin change notifications of a cut-over device, written to its AWS shadows.

Who writes what after cutover (README, "The reverse path"):

- **reported**: the device, on Azure. Each reported patch it makes is merged into the AWS
  shadows' `reported` (classic at the top level, named under `shadows.<name>`, as the
  mirror laid them out). Nothing writes a device twin's reported section but the device,
  so this direction cannot echo; `twin_reported` marks the twin `$version` carried, and a
  notification read again (at-least-once) is skipped as a duplicate. A device identity
  deleted and created again starts its versions over; IoT Hub's notifications do not say
  so (no identity generation on them), so a version at or below the mark is checked
  against the twin before it is skipped (`_started_over`).
- **desired**: both sides, last writer wins per key. AWS-side changes reach the twin
  through the mirror (a full replace, `replaceTwin`); Azure-side patches (`updateTwin`)
  reach AWS here. Echoes are cut on both sides: a `replaceTwin` is the mirror's own write
  and is never carried back; a patch that leaves AWS's desired as the store knows it
  (the mirror's view) changes nothing and is skipped; and before writing a patch to AWS
  the mirror is told that the twin already holds what AWS will announce (its fingerprint,
  when the twin read back shows it does), so it does not write the same desired back.
  `twin_desired` marks the `$version` carried, `shadow_desired/<name>` the AWS shadow
  version the write produced.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Protocol

from bridge.azure.twin_map import fingerprint_of, split_fingerprint, twin_document
from bridge.core.groups import group_paths
from bridge.core.store import Store, SyncMark
from bridge.core.view import CLASSIC, DeviceView, ShadowView
from bridge.errors import MalformedEvent, Rejected
from bridge.logging import get_logger
from bridge.mapping.shadows import ALL_NAMED, apply_patch, shadow_documents

__all__ = ["ShadowSink", "TwinChange", "TwinReader", "TwinState", "TwinSync", "parse_twin_change"]

_log = get_logger("reverse.twins")
REPORTED = "twin_reported"
DESIRED = "twin_desired"
SHADOW_DESIRED = "shadow_desired"
_WHERE = "twinChangeEvents"


class ShadowSink(Protocol):
    """Merges a section of one AWS shadow; returns the shadow's new version."""

    async def update(
        self, thing: str, shadow: str | None, section: str, state: Mapping[str, Any] | None
    ) -> int:
        """Raise `Rejected` when AWS refuses the document itself."""
        ...


@dataclass(frozen=True)
class TwinState:
    """A device twin as read now (without IoT Hub's `$` keys)."""

    tags: Mapping[str, Any]
    desired: Mapping[str, Any]
    reported: Mapping[str, Any]
    reported_version: int
    desired_version: int = 0

    def version(self, section: str) -> int:
        """The `$version` of `section` (desired or reported)."""
        return self.reported_version if section == "reported" else self.desired_version


TwinReader = Callable[[str], Awaitable[TwinState]]
"""Reads a device twin."""


@dataclass(frozen=True)
class TwinChange:
    """One twinChangeEvents notification of a device twin."""

    device_id: str
    op_type: str  # updateTwin or replaceTwin
    section: str  # desired or reported
    version: int  # the section's $version after the change
    document: dict[str, Any]  # the patch (updateTwin) or the whole section (replaceTwin)
    generation: str = ""  # the identity's generation: versions restart with a new one

    @property
    def from_mirror(self) -> bool:
        """A whole replace of desired: what the mirror writes (from AWS)."""
        return self.section == "desired" and self.op_type != "updateTwin"


def parse_twin_change(
    device_id: str, properties: Mapping[str, str], body: bytes, generation: str | None = None
) -> list[TwinChange]:
    """The section changes a notification carries (tags-only changes carry none).

    Raises `MalformedEvent` (a ValueError) when the body is not a twin change notification.
    """
    try:
        document = json.loads(body)
    except ValueError as exc:
        raise MalformedEvent(_WHERE, "the body is not JSON") from exc
    if not isinstance(document, dict):
        raise MalformedEvent(_WHERE, "the body is not a JSON object")
    sections = document.get("properties") or {}
    if not isinstance(sections, dict):
        raise MalformedEvent(_WHERE, "'properties' is not an object")
    op_type = properties.get("opType", "updateTwin")
    changes = []
    for section in ("desired", "reported"):
        content = sections.get(section)
        if content is None:
            continue
        if not isinstance(content, dict) or not isinstance(content.get("$version"), int):
            raise MalformedEvent(_WHERE, f"'{section}' is not a section with a $version")
        version = content["$version"]
        changes.append(TwinChange(device_id, op_type, section, version, content, generation or ""))
    return changes


class TwinSync:
    """Carries twin changes to AWS shadows, remembering what was carried in the store."""

    def __init__(self, store: Store, shadows: ShadowSink, read_twin: TwinReader) -> None:
        self._store = store
        self._shadows = shadows
        self._read_twin = read_twin

    async def apply(self, change: TwinChange) -> str:
        """Carry one change; return the outcome (written, echo, duplicate).

        Raises `Rejected` when AWS refuses the document (the caller dead-letters it) and
        anything else when retrying may help.
        """
        direction = REPORTED if change.section == "reported" else DESIRED
        mark = await self._store.sync_mark(change.device_id, direction, change.generation)
        twin: TwinState | None = None  # read at most once per change
        if mark is not None and change.version <= mark.version:
            twin = await self._started_over(change, mark.version)
            if twin is None:
                return "duplicate"
            mark = None  # a new identity under the same name: its versions started over
        if change.from_mirror:
            # The mirror replaces twins whole; what it wrote came from AWS.
            await self._mark(change, direction)
            return "echo"
        if change.section == "reported" and mark is None:
            # First report carried for this device: carry its whole reported section, so
            # what it reported before (or beyond the endpoint's retention) reaches AWS too.
            twin = twin or await self._read_twin(change.device_id)
            if twin.reported_version >= change.version:
                whole = {**twin.reported, "$version": twin.reported_version}
                change = replace(change, version=twin.reported_version, document=whole)
        views = await self._store.get_views([change.device_id])
        view = views.get(change.device_id) or DeviceView(change.device_id)
        patches = self._patches(change, view)
        if not patches:
            await self._mark(change, direction)
            return "echo"
        if change.section == "desired":
            # Before AWS announces the write (and the mirror folds it), not after.
            await self._tell_mirror(view, patches)
        for shadow, patch in patches.items():
            version = await self._shadows.update(change.device_id, shadow, change.section, patch)
            if change.section == "desired":
                name = shadow or CLASSIC
                await self._store.set_sync_mark(
                    SyncMark(change.device_id, SHADOW_DESIRED, name, version)
                )
        await self._mark(change, direction)
        return "written"

    async def _started_over(self, change: TwinChange, marked: int) -> TwinState | None:
        """The twin, read now, if its section is below the version carried last (the device
        identity was deleted and created again, and its versions started over); None when
        `change` is a notification read again.

        IoT Hub's twin notifications carry no identity generation (only a device's own
        messages do), so a version at or below the mark is a notification read again
        (at-least-once) or one of a new identity. Versions only grow within an identity,
        so a twin read settles it; this read happens only for those notifications.
        """
        if change.generation:
            return None  # a generation the notification names: its versions are comparable
        twin = await self._read_twin(change.device_id)
        if twin.version(change.section) >= marked:
            return None
        _log.info(
            "reverse.twin_started_over",
            device_id=change.device_id,
            section=change.section,
            carried_version=marked,
            twin_version=twin.version(change.section),
        )
        return twin

    def _patches(
        self, change: TwinChange, view: DeviceView
    ) -> dict[str | None, dict[str, Any] | None]:
        documents = shadow_documents(change.document)
        if ALL_NAMED in documents:
            del documents[ALL_NAMED]
            for name in view.shadows:
                if name != CLASSIC:
                    documents.setdefault(name, None)
        if change.section == "reported":
            return documents
        # Desired: only what would change AWS's desired as the store knows it.
        changing: dict[str | None, dict[str, Any] | None] = {}
        for shadow, patch in documents.items():
            current = view.shadows.get(shadow or CLASSIC)
            desired = dict(current.desired) if current is not None else {}
            if apply_patch(desired, patch) != desired:
                changing[shadow] = patch
        return changing

    async def _tell_mirror(
        self, view: DeviceView, patches: Mapping[str | None, dict[str, Any] | None]
    ) -> None:
        """Have the mirror see the twin as already holding AWS's coming desired state.

        Only while the mirror is caught up with the view (its fingerprint is the view's) and
        the twin holds exactly what the view with the patch maps to: otherwise the mirror
        has writes of its own to make (or overwrote the patch meanwhile), and must make them.
        """
        device = await self._store.get_device(view.device_id)
        if device is None or not view.exists:
            return
        paths = group_paths(view.groups, await self._store.group_parents())
        try:
            before = twin_document(view, paths)
            shadows = dict(view.shadows)
            for shadow, patch in patches.items():
                name = shadow or CLASSIC
                current = shadows.get(name) or ShadowView(0)
                shadows[name] = replace(current, desired=apply_patch(current.desired, patch))
            after = twin_document(replace(view, shadows=shadows), paths)
        except Rejected:
            return  # too large for a twin: the mirror will say so itself
        twin_part, reported_part = split_fingerprint(device.fingerprint)
        if twin_part != before.twin_fingerprint:
            return
        twin = await self._read_twin(view.device_id)
        if fingerprint_of(twin.tags, twin.desired) != after.twin_fingerprint:
            return
        fingerprint = f"{after.twin_fingerprint}.{reported_part or ''}"
        if await self._store.replace_fingerprint(view.device_id, device.fingerprint, fingerprint):
            _log.debug("reverse.mirror_told", device_id=view.device_id)

    async def _mark(self, change: TwinChange, direction: str) -> None:
        # Per identity generation: a device deleted and created again counts from 1 again.
        mark = SyncMark(change.device_id, direction, change.generation, change.version)
        await self._store.set_sync_mark(mark)
