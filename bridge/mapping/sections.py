"""A thing's twin sections (tags, desired, reported): `plan` and the mirror both use this.

What `iot-bridge plan` promises for a device is exactly what the mirror writes, because
both build the twin here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bridge.inventory.models import Shadow, Thing
from bridge.mapping.models import PlanFinding
from bridge.mapping.twin import encode_document, encode_property_name

__all__ = ["NAMED_SHADOWS_KEY", "twin_sections"]

NAMED_SHADOWS_KEY = "shadows"  # twin key under which named shadows are namespaced
_RENAMED_SHOWN = 5


def twin_sections(
    thing: Thing,
    groups: set[str],
    group_paths: Mapping[str, str],
    findings: list[PlanFinding],
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Twin tags, desired and reported for a thing: the plan and the mirror both use this.

    `groups` are the thing's direct groups; `group_paths` maps a group to its path from
    the root (a group missing from it stands for itself). Renamed properties are reported
    in `findings`.
    """
    renamed: list[str] = []
    tags = encode_document(_tags(thing, groups, group_paths), renamed)
    desired = _shadow_section(thing.shadows, "desired", renamed, findings)
    reported = _shadow_section(thing.shadows, "reported", renamed, findings)
    if renamed:
        shown = ", ".join(sorted(renamed)[:_RENAMED_SHOWN])
        findings.append(
            _finding(
                "info",
                "TWIN_PROPERTY_RENAMED",
                f"{len(renamed)} property names contain '.', '$', '#', space or '%' and are "
                f"percent-encoded in the twin: {shown}",
            )
        )
    return tags, desired, reported


def _tags(thing: Thing, groups: set[str], group_paths: Mapping[str, str]) -> dict[str, Any]:
    aws: dict[str, Any] = {"thingName": thing.name}
    if thing.arn:
        aws["thingArn"] = thing.arn
    if thing.thing_type:
        aws["thingType"] = thing.thing_type
    if thing.attributes:
        aws["attributes"] = dict(sorted(thing.attributes.items()))
    if groups:
        aws["groups"] = sorted(group_paths.get(group, group) for group in groups)
    return {"aws": aws}


def _shadow_section(
    shadows: list[Shadow], section: str, renamed: list[str], findings: list[PlanFinding]
) -> dict[str, Any]:
    """Classic shadow at the top level, named shadows under `shadows.<name>`."""
    document: dict[str, Any] = {}
    named: dict[str, Any] = {}
    for shadow in sorted(shadows, key=lambda s: s.name or ""):
        state = getattr(shadow, section) or {}
        if shadow.name is None:
            document.update(encode_document(state, renamed))
        elif state:
            named[encode_property_name(shadow.name)] = encode_document(
                state, renamed, f"{NAMED_SHADOWS_KEY}/{shadow.name}/"
            )
    if named:
        if NAMED_SHADOWS_KEY in document:
            findings.append(
                _finding(
                    "error",
                    "SHADOW_KEY_COLLISION",
                    f"the classic shadow's {section} has a '{NAMED_SHADOWS_KEY}' key, where "
                    "named shadows are namespaced; the classic value is left out",
                )
            )
        document[NAMED_SHADOWS_KEY] = named
    return document


def _finding(severity: str, code: str, message: str) -> PlanFinding:
    return PlanFinding.model_validate({"severity": severity, "code": code, "message": message})
