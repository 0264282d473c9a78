"""Twin sections (tags, desired, reported): JSON merge-patch, `$metadata`, IoT Hub's limits."""

from __future__ import annotations

import copy
import json
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from bridge_sim.iothub.errors import IoTHubError

__all__ = [
    "MAX_DEPTH",
    "MAX_KEY_BYTES",
    "MAX_STRING_BYTES",
    "SECTION_LIMITS",
    "TwinSection",
    "merge_patch",
    "strip_system_keys",
    "validate_section",
]

MAX_DEPTH = 10
MAX_KEY_BYTES = 1024
MAX_STRING_BYTES = 4096
SECTION_LIMITS = {"tags": 8 * 1024, "desired": 32 * 1024, "reported": 32 * 1024}
_FORBIDDEN_KEY_CHARACTERS = frozenset(".$ ")

JsonObject = dict[str, Any]


def strip_system_keys(values: JsonObject) -> JsonObject:
    """Drop `$version`, `$metadata` and other read-only `$` keys a client echoed back."""
    return {key: value for key, value in values.items() if not key.startswith("$")}


def merge_patch(target: JsonObject, patch: JsonObject) -> JsonObject:
    """RFC 7386 merge-patch, returning a new object: `null` deletes, objects merge."""
    result = copy.deepcopy(target)
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict):
            existing = result.get(key)
            result[key] = merge_patch(existing if isinstance(existing, dict) else {}, value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def _check_key(key: str, section: str) -> None:
    if not key or len(key.encode()) > MAX_KEY_BYTES:
        raise IoTHubError.argument_invalid(f"Invalid key in {section}: length 1 to 1024 bytes")
    if any(c in _FORBIDDEN_KEY_CHARACTERS or unicodedata.category(c) == "Cc" for c in key):
        raise IoTHubError.argument_invalid(
            f"Invalid key '{key}' in {section}: '.', '$', space and control characters"
            " are not allowed"
        )


def _check_value(value: Any, section: str, depth: int) -> None:
    if isinstance(value, dict):
        if depth > MAX_DEPTH:
            raise IoTHubError.argument_invalid(
                f"Nesting depth of {section} exceeds the maximum of {MAX_DEPTH} levels"
            )
        for key, child in value.items():
            _check_key(key, section)
            _check_value(child, section, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _check_value(item, section, depth + 1)
    elif isinstance(value, str) and len(value.encode()) > MAX_STRING_BYTES:
        raise IoTHubError.argument_invalid(
            f"Property or Tag value in {section} should be maximum {MAX_STRING_BYTES} bytes"
        )


def validate_section(values: Any, section: str) -> None:
    """Raise 400 ArgumentInvalid when `values` breaks IoT Hub's key, depth or size rules."""
    if not isinstance(values, dict):
        raise IoTHubError.argument_invalid(f"{section} must be a JSON object")
    # The section itself is not a level: IoT Hub's docs give tags {"one": {... "ten":
    # {"property": "value"}}} as valid at the maximum depth of 10.
    _check_value(values, section, 0)
    size = len(json.dumps(values, separators=(",", ":")).encode())
    limit = SECTION_LIMITS[section]
    if size > limit:
        raise IoTHubError.argument_invalid(
            f"Twin {section} size {size} bytes exceeds the maximum of {limit} bytes"
        )


def _metadata_for(value: Any, stamp: JsonObject) -> JsonObject:
    node = dict(stamp)
    if isinstance(value, dict):
        for key, child in value.items():
            node[key] = _metadata_for(child, stamp)
    return node


def _patch_metadata(
    metadata: JsonObject, values: JsonObject, patch: JsonObject, stamp: JsonObject
) -> None:
    for key, value in patch.items():
        if value is None:
            metadata.pop(key, None)
        elif isinstance(value, dict) and isinstance(metadata.get(key), dict):
            child = metadata[key]
            child.update(stamp)
            _patch_metadata(child, values.get(key, {}), value, stamp)
        else:
            metadata[key] = _metadata_for(values.get(key), stamp)


@dataclass
class TwinSection:
    """Desired or reported properties with their `$version` and `$metadata` tree."""

    name: str
    values: JsonObject = field(default_factory=dict)
    version: int = 1
    metadata: JsonObject = field(default_factory=dict)

    def _stamp(self, now: str) -> JsonObject:
        # Reported metadata carries no $lastUpdatedVersion in IoT Hub's documents.
        if self.name == "desired":
            return {"$lastUpdated": now, "$lastUpdatedVersion": self.version}
        return {"$lastUpdated": now}

    def patch(self, patch: JsonObject, now: str) -> None:
        """Merge `patch` (already validated) and bump `$version`."""
        patch = strip_system_keys(patch)
        merged = merge_patch(self.values, patch)
        validate_section(merged, self.name)
        self.values = merged
        self.version += 1
        stamp = self._stamp(now)
        self.metadata.update(stamp)
        _patch_metadata(self.metadata, self.values, patch, stamp)

    def replace(self, values: JsonObject, now: str) -> None:
        """Replace every value and bump `$version`."""
        values = strip_system_keys(values)
        validate_section(values, self.name)
        self.values = copy.deepcopy(values)
        self.version += 1
        self.metadata = _metadata_for(self.values, self._stamp(now))

    def document(self, *, with_metadata: bool = True) -> JsonObject:
        """The section as IoT Hub serialises it, with `$version` (and `$metadata`)."""
        result = copy.deepcopy(self.values)
        if with_metadata:
            result["$metadata"] = copy.deepcopy(self.metadata)
        result["$version"] = self.version
        return result
