"""A device view as the IoT Hub twin the mirror writes, and its fingerprint.

The sections come from `bridge.mapping.sections.twin_sections`, so what `iot-bridge plan`
promises and what the daemon writes are the same document.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bridge.core.view import CLASSIC, DeviceView
from bridge.errors import Rejected
from bridge.inventory.models import Shadow, Thing
from bridge.mapping.models import PlanFinding
from bridge.mapping.sections import twin_sections
from bridge.mapping.twin import (
    MAX_DEPTH,
    MAX_DESIRED_BYTES,
    MAX_TAGS_BYTES,
    document_depth,
    document_size,
    refused_entry,
)

__all__ = ["TwinDocument", "fingerprint_of", "split_fingerprint", "twin_document"]


@dataclass(frozen=True)
class TwinDocument:
    """What the device twin should hold: tags and desired (reported stays the device's)."""

    tags: dict[str, Any]
    desired: dict[str, Any]
    reported: dict[str, Any]
    left_out: tuple[str, ...] = ()  # what AWS holds and the twin cannot, and why

    @property
    def twin_fingerprint(self) -> str:
        """Digest of what the device twin holds (tags and desired)."""
        return fingerprint_of(self.tags, self.desired)

    @property
    def reported_fingerprint(self) -> str:
        """Digest of the mirrored reported state (the relay module twin's)."""
        return _reported_digest(self.reported)

    @property
    def created_fingerprint(self) -> str:
        """What a bulk create or import writes: the twin, and the module's empty reported."""
        return f"{self.twin_fingerprint}.{_reported_digest({})}"

    @property
    def fingerprint(self) -> str:
        """`<twin>.<reported>`: either part changing calls for a write of that part."""
        return f"{self.twin_fingerprint}.{self.reported_fingerprint}"


def fingerprint_of(tags: Mapping[str, Any], desired: Mapping[str, Any]) -> str:
    """Digest of tags and desired, ignoring IoT Hub's own `$metadata`/`$version` keys."""
    body = {"tags": _without_meta(tags), "desired": _without_meta(desired)}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def _reported_digest(reported: Mapping[str, Any]) -> str:
    text = json.dumps(reported, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def split_fingerprint(fingerprint: str | None) -> tuple[str | None, str | None]:
    """(twin part, reported part) of a fingerprint written by `TwinDocument.fingerprint`."""
    if not fingerprint:
        return None, None
    twin, _, reported = fingerprint.partition(".")
    return twin, reported or None


def _without_meta(section: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in section.items() if not key.startswith("$")}


def twin_document(view: DeviceView, group_paths: Mapping[str, str]) -> TwinDocument:
    """The twin for `view`; raise `Rejected` when IoT Hub would refuse it (size, depth,
    a property name over 1 KB or a string over 4 KB)."""
    thing = Thing(
        name=view.device_id,
        thing_type=view.thing_type,
        attributes=dict(view.attributes),
        version=view.thing_version,
        groups=sorted(view.groups),
        shadows=[
            Shadow(
                name=None if name == CLASSIC else name,
                version=shadow.version,
                desired=dict(shadow.desired) or None,
                reported=dict(shadow.reported) or None,
                size_bytes=0,
            )
            for name, shadow in view.shadows.items()
        ],
    )
    findings: list[PlanFinding] = []
    tags, desired, reported = twin_sections(thing, set(view.groups), group_paths, findings)
    _check("tags", tags, MAX_TAGS_BYTES)
    _check("desired", desired, MAX_DESIRED_BYTES)
    left_out = tuple(f.message for f in findings if f.severity == "error")
    return TwinDocument(tags, desired, reported, left_out)


def _check(section: str, document: dict[str, Any], limit: int) -> None:
    size = document_size(document)
    if size > limit:
        msg = f"twin {section} would be {size} bytes, over IoT Hub's {limit}"
        raise Rejected(msg)
    depth = document_depth(document)
    if depth > MAX_DEPTH:
        msg = f"twin {section} nests {depth} levels deep, over IoT Hub's {MAX_DEPTH}"
        raise Rejected(msg)
    refused = refused_entry(document)
    if refused:
        msg = f"twin {section}: {refused}"
        raise Rejected(msg)
