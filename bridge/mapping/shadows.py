"""The twin layout read back into AWS shadows: the inverse of `sections._shadow_section`.

The mirror writes a thing's shadows into one twin section (desired, or reported): the
classic shadow at the top level, each named shadow under `shadows.<name>`, property names
IoT Hub refuses percent-encoded. After cutover the reverse path reads twin sections (and
merge patches of them, which have the same shape) and writes each shadow back to AWS.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bridge.mapping.sections import NAMED_SHADOWS_KEY
from bridge.mapping.twin import decode_property_name

__all__ = ["ALL_NAMED", "apply_patch", "decode_document", "shadow_documents"]

ALL_NAMED = "*"
"""Key of `shadow_documents` when a patch removed `shadows` whole: every named shadow's
section goes (AWS has no wildcard, so the caller lists the named shadows it knows)."""


def decode_document(document: Any) -> Any:
    """A copy of a twin document with every key decoded and IoT Hub's `$` keys left out."""
    if isinstance(document, Mapping):
        return {
            decode_property_name(str(key)): decode_document(value)
            for key, value in document.items()
            if not str(key).startswith("$")
        }
    if isinstance(document, list):
        return [decode_document(item) for item in document]
    return document


def shadow_documents(section: Mapping[str, Any]) -> dict[str | None, dict[str, Any] | None]:
    """Per shadow (None: the classic one), its part of a twin section or a patch of one.

    A value of None means the whole section of that shadow is removed (a patch setting
    `shadows.<name>` to null); `ALL_NAMED` stands for every named shadow (`shadows` null).
    Shadows the section does not mention are absent, so a patch maps to patches.
    """
    documents: dict[str | None, dict[str, Any] | None] = {}
    classic = {
        key: value
        for key, value in section.items()
        if key != NAMED_SHADOWS_KEY and not key.startswith("$")
    }
    if classic:
        documents[None] = decode_document(classic)
    if NAMED_SHADOWS_KEY not in section:
        return documents
    named = section[NAMED_SHADOWS_KEY]
    if named is None:
        documents[ALL_NAMED] = None
        return documents
    if not isinstance(named, Mapping):
        # Not the mirror's layout: a plain classic property that happens to be named so.
        documents[None] = {**(documents.get(None) or {}), NAMED_SHADOWS_KEY: named}
        return documents
    for name, state in named.items():
        if str(name).startswith("$"):
            continue
        decoded = decode_property_name(str(name))
        documents[decoded] = decode_document(state) if isinstance(state, Mapping) else None
    return documents


def apply_patch(document: Mapping[str, Any], patch: Mapping[str, Any] | None) -> dict[str, Any]:
    """`document` after a merge patch, as AWS shadows and IoT Hub twins both merge: a None
    value removes its key, objects merge key by key, anything else replaces; a None patch
    clears the document."""
    if patch is None:
        return {}
    merged = dict(document)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = apply_patch(merged[key], value)
        elif isinstance(value, Mapping):
            merged[key] = apply_patch({}, value)
        else:
            merged[key] = value
    return merged
