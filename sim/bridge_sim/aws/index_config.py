"""Fleet indexing configuration: what UpdateIndexingConfiguration accepts and Get returns.

AWS rules kept (developer guide, "Manage thing indexing"): thing indexing is OFF until
enabled; connectivity or named shadow indexing need thing indexing on; named shadows are
indexed only when named shadow indexing is ON and their names are in
`filter.namedShadowNames` (at most 10, AWS's default quota). An update replaces the whole
thing (or thing group) configuration it carries; a section left out is kept.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from moto.iot.exceptions import InvalidRequestException

__all__ = ["MAX_NAMED_SHADOW_NAMES", "IndexingConfiguration"]

MAX_NAMED_SHADOW_NAMES = 10
_THING_MODES = ("OFF", "REGISTRY", "REGISTRY_AND_SHADOW")
_MODES = {
    "thingConnectivityIndexingMode": ("OFF", "STATUS"),
    "namedShadowIndexingMode": ("OFF", "ON"),
    "deviceDefenderIndexingMode": ("OFF", "VIOLATIONS"),
}
# Fields AWS manages itself for each data source (developer guide, "Managed fields").
_MANAGED = {
    "registry": [
        {"name": "registry.version", "type": "Number"},
        {"name": "registry.thingTypeName", "type": "String"},
        {"name": "registry.thingGroupNames", "type": "String"},
    ],
    "shadow": [
        {"name": "shadow.version", "type": "Number"},
        {"name": "shadow.hasDelta", "type": "Boolean"},
    ],
    "named": [
        {"name": "shadow.name.*.version", "type": "Number"},
        {"name": "shadow.name.*.hasDelta", "type": "Boolean"},
    ],
    "connectivity": [
        {"name": "connectivity.connected", "type": "Boolean"},
        {"name": "connectivity.timestamp", "type": "Number"},
        {"name": "connectivity.disconnectReason", "type": "String"},
    ],
}


def _mode(config: dict[str, Any], key: str, allowed: tuple[str, ...]) -> str:
    value = config.get(key) or "OFF"
    if value not in allowed:
        raise InvalidRequestException(f"{key} must be one of {', '.join(allowed)}")
    return str(value)


@dataclass
class IndexingConfiguration:
    """The account's thing and thing group indexing configuration."""

    thing: dict[str, Any] = field(
        default_factory=lambda: {"thingIndexingMode": "OFF", "thingConnectivityIndexingMode": "OFF"}
    )
    group: dict[str, Any] = field(default_factory=lambda: {"thingGroupIndexingMode": "OFF"})

    @property
    def thing_mode(self) -> str:
        """OFF, REGISTRY or REGISTRY_AND_SHADOW."""
        return str(self.thing["thingIndexingMode"])

    @property
    def shadows_indexed(self) -> bool:
        """Whether the classic shadow is in the index."""
        return self.thing_mode == "REGISTRY_AND_SHADOW"

    @property
    def connectivity_indexed(self) -> bool:
        """Whether connectivity status is in the index."""
        return self.thing.get("thingConnectivityIndexingMode") == "STATUS"

    @property
    def named_shadows(self) -> tuple[str, ...]:
        """Names of the named shadows in the index (none unless named shadow indexing is ON)."""
        if self.thing.get("namedShadowIndexingMode") != "ON":
            return ()
        return tuple(self.thing.get("filter", {}).get("namedShadowNames", []))

    def update(self, thing: dict[str, Any], group: dict[str, Any]) -> None:
        """Apply an UpdateIndexingConfiguration request, or raise InvalidRequestException."""
        new_thing = self._validated_thing(thing) if thing else self.thing
        new_group = self.group
        if group:
            new_group = {
                **copy.deepcopy(group),
                "thingGroupIndexingMode": _mode(group, "thingGroupIndexingMode", ("OFF", "ON")),
            }
        self.thing, self.group = new_thing, new_group

    def _validated_thing(self, request: dict[str, Any]) -> dict[str, Any]:
        config = copy.deepcopy(request)
        config["thingIndexingMode"] = _mode(request, "thingIndexingMode", _THING_MODES)
        for key, allowed in _MODES.items():
            config[key] = _mode(request, key, allowed)
        if config["thingIndexingMode"] == "OFF" and any(config[key] != "OFF" for key in _MODES):
            raise InvalidRequestException(
                "thingIndexingMode must not be OFF while connectivity, named shadow or "
                "Device Defender indexing is on"
            )
        names = config.get("filter", {}).get("namedShadowNames", [])
        if len(names) > MAX_NAMED_SHADOW_NAMES:
            raise InvalidRequestException(
                f"At most {MAX_NAMED_SHADOW_NAMES} named shadow names can be indexed"
            )
        config.setdefault("customFields", [])
        config["managedFields"] = self._managed(config)
        return config

    @staticmethod
    def _managed(config: dict[str, Any]) -> list[dict[str, str]]:
        if config["thingIndexingMode"] == "OFF":
            return []
        fields = list(_MANAGED["registry"])
        if config["thingIndexingMode"] == "REGISTRY_AND_SHADOW":
            fields += _MANAGED["shadow"]
        if config["namedShadowIndexingMode"] == "ON":
            fields += _MANAGED["named"]
        if config["thingConnectivityIndexingMode"] == "STATUS":
            fields += _MANAGED["connectivity"]
        return [dict(f) for f in fields]

    def to_response(self) -> dict[str, Any]:
        """The GetIndexingConfiguration answer."""
        return {
            "thingIndexingConfiguration": copy.deepcopy(self.thing),
            "thingGroupIndexingConfiguration": copy.deepcopy(self.group),
        }
