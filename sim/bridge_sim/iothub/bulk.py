"""POST /devices: up to 100 `ExportImportDevice` operations, applied one by one.

Each entry succeeds or fails on its own, as in IoT Hub: the answer lists the failures and
is 400 when there is at least one. A request that is not a list of at most 100 distinct
entries with known import modes fails as a whole. Import jobs (`jobs_run`) apply each
line of `devices.txt` with the same `check_entry` and `apply_entry`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bridge_sim.iothub.errors import IoTHubError

if TYPE_CHECKING:
    from bridge_sim.iothub.registry import Registry

__all__ = [
    "MAX_BULK",
    "BulkResult",
    "apply_bulk",
    "apply_entry",
    "check_entry",
    "validate_bulk",
]

MAX_BULK = 100
IMPORT_MODES = frozenset(
    {
        "create",
        "createOrUpdate",
        "createOrUpdateIfMatchETag",
        "update",
        "updateIfMatchETag",
        "delete",
        "deleteIfMatchETag",
        "updateTwin",
        "updateTwinIfMatchETag",
    }
)


@dataclass
class BulkResult:
    """What IoT Hub answers: `isSuccessful`, `errors` per entry, `warnings` (always empty)."""

    errors: list[dict[str, Any]] = field(default_factory=list)

    @property
    def successful(self) -> bool:
        return not self.errors

    def to_json(self) -> dict[str, Any]:
        return {"isSuccessful": self.successful, "errors": self.errors, "warnings": []}


def validate_bulk(body: Any) -> list[dict[str, Any]]:
    """Check the request as a whole; raise 400 when it cannot be applied at all."""
    if not isinstance(body, list):
        raise IoTHubError.argument_invalid("The request body must be a JSON array of devices")
    if len(body) > MAX_BULK:
        raise IoTHubError(
            400, "TooManyDevices", f"Too many devices in one request: {len(body)} > {MAX_BULK}"
        )
    seen: set[tuple[str, str | None]] = set()
    for entry in body:
        check_entry(entry)
        key = (entry["id"], entry.get("moduleId"))
        if key in seen:
            raise IoTHubError.argument_invalid(f"Device '{entry['id']}' appears more than once")
        seen.add(key)
    return body


def check_entry(entry: Any) -> dict[str, Any]:
    """One `ExportImportDevice` on its own: a string `id` and a known `importMode`."""
    if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
        raise IoTHubError.argument_invalid("Every entry needs a string 'id'")
    mode = entry.get("importMode") or "createOrUpdate"
    if mode not in IMPORT_MODES:
        raise IoTHubError.argument_invalid(f"Unknown importMode '{mode}'")
    return entry


def _quoted(etag: Any) -> str:
    # An IfMatchETag mode without an etag can never match.
    return f'"{etag}"' if isinstance(etag, str) and etag else '"<none>"'


def _twin_patch(entry: dict[str, Any]) -> dict[str, Any] | None:
    properties = entry.get("properties") or {}
    desired = properties.get("desired") if isinstance(properties, dict) else None
    if entry.get("tags") is None and desired is None:
        return None
    return {"tags": entry.get("tags"), "properties": {"desired": desired}}


def apply_entry(registry: Registry, entry: dict[str, Any]) -> None:
    """Apply one checked entry (see `check_entry`); raise its `IoTHubError` on failure."""
    device_id, module_id = entry["id"], entry.get("moduleId")
    mode: str = entry.get("importMode") or "createOrUpdate"
    identity_body: dict[str, Any] = {
        key: entry[key]
        for key in (
            "status",
            "statusReason",
            "authentication",
            "capabilities",
            "deviceScope",
            "parentScopes",
            "managedBy",
        )
        if key in entry
    }
    exists = registry.find(device_id, module_id) is not None

    def put(if_match: str | None) -> None:
        if module_id is None:
            registry.put_device(device_id, identity_body, if_match)
        else:
            registry.put_module(device_id, module_id, identity_body, if_match)

    if mode.startswith("delete"):
        if_match = _quoted(entry.get("eTag")) if mode.endswith("IfMatchETag") else "*"
        if module_id is None:
            registry.delete_device(device_id, if_match)
        else:
            registry.delete_module(device_id, module_id, if_match)
        return
    if mode.startswith("updateTwin"):
        if_match = _quoted(entry.get("twinETag")) if mode.endswith("IfMatchETag") else "*"
        registry.update_twin(device_id, _twin_patch(entry) or {}, if_match, module_id)
        return
    if mode == "create" or (mode.startswith("createOrUpdate") and not exists):
        put(None)
    elif mode.endswith("IfMatchETag"):
        put(_quoted(entry.get("eTag")))
    else:
        put("*")
    patch = _twin_patch(entry)
    if patch is not None:
        registry.update_twin(device_id, patch, "*", module_id)


def apply_bulk(registry: Registry, entries: list[dict[str, Any]]) -> BulkResult:
    """Apply validated entries in order; collect each failure instead of stopping."""
    result = BulkResult()
    for entry in entries:
        try:
            apply_entry(registry, entry)
        except IoTHubError as error:
            failure: dict[str, Any] = {
                "deviceId": entry["id"],
                "errorCode": error.code,
                "errorStatus": error.message,
                "operation": entry.get("importMode") or "createOrUpdate",
            }
            if entry.get("moduleId") is not None:
                failure["moduleId"] = entry["moduleId"]
            result.errors.append(failure)
    return result
