"""The emulator's shared state: identities, twins, shared access policies.

One `Registry` backs the service REST API and, later, the device MQTT endpoint. Every
method is synchronous and guarded by a lock, so callers on any thread or event loop see
consistent state. Errors are `IoTHubError` (status + IoT Hub error code).

Public API for a device endpoint:

- Identity and auth: `registry.identity(device_id, module_id=None) -> Identity` (raises
  404 `IoTHubError`) or `registry.find(device_id, module_id=None) -> Identity | None`.
  `Identity.authentication.type` is `sas`, `selfSigned`, `certificateAuthority` or `none`;
  `.authentication.sas_keys` and `.authentication.thumbprints` (upper-case hex) hold the
  secrets; `Identity.enabled` is False when the device's `status` is `disabled` (a module
  follows its device: check `registry.device_enabled(device_id)`).
  `registry.device_resource(device_id, module_id)` is the SAS `sr` a device token must name:
  `sas.verify_token(password, identity.authentication.sas_keys, resource=...)` checks one.
  Identities are live objects: read them, but change them only through the registry.
- Twin read: `registry.twin_properties(device_id, module_id=None)` returns
  `{"desired": {..., "$version": n}, "reported": {..., "$version": m}}`, the MQTT GET body.
- Reported patch: `registry.patch_reported(device_id, patch, module_id=None) -> int`, the
  new reported `$version` (`null` deletes a key; limits raise 400 `IoTHubError`).
- Desired changes: `registry.subscribe_desired(device_id, module_id=None, callback=None)`
  returns a `DesiredSubscription`; each desired change delivers the patch with its
  `$version` to `callback` (called on the writer's thread) or, without a callback, to
  `subscription.queue` (an asyncio.Queue fed thread-safely on the subscriber's loop).
  `subscription.close()` stops delivery. A full replace delivers the whole desired section.
- Identity changes: `registry.add_identity_listener(callback)` calls
  `callback(event, device_id, module_id)` for "created", "updated" (status, keys, auth) and
  "deleted" (a device's deletion takes its modules along); IoT Hub drops the connection of
  an identity that is deleted, disabled or re-keyed. It returns a function that removes it.
  Callbacks run on the writer's thread under the registry lock: keep them short (hand off
  with `loop.call_soon_threadsafe`).
- Twin changes: `registry.add_twin_listener(callback)` calls
  `callback(device_id, module_id, op_type, body)` after every twin write (`updateTwin` for a
  patch of tags, desired or reported, `replaceTwin` for a full replace), `body` as a
  twinChangeEvents message carries it: `{"version", "tags"?, "properties": {"desired"|
  "reported": {..., "$version"}}}` (the patch, or the whole replaced sections). Same
  threading rules as identity listeners; it returns a function that removes it.
- Connection state: `registry.set_connection_state(device_id, connected, module_id=None)`
  stamps `connectionState`, `connectionStateUpdatedTime` and `lastActivityTime`;
  `registry.record_activity(device_id, module_id=None)` stamps `lastActivityTime` only.
"""

from __future__ import annotations

import base64
import datetime as dt
import itertools
import secrets
import threading
from typing import TYPE_CHECKING, Any

from bridge.logging import get_logger
from bridge_sim.iothub.errors import IoTHubError
from bridge_sim.iothub.identity import (
    Identity,
    format_time,
    identity_settings,
    validate_identifier,
)
from bridge_sim.iothub.policies import SharedAccessPolicy, default_policies
from bridge_sim.iothub.query import Query, parse_query
from bridge_sim.iothub.subscriptions import (
    DesiredSubscription,
    DesiredSubscriptions,
    IdentityListener,
    IdentityListeners,
)
from bridge_sim.iothub.twin import merge_patch, strip_system_keys, validate_section

if TYPE_CHECKING:
    from collections.abc import Callable

    # (device_id, module_id, op_type, body) of one twin write.
    TwinListener = Callable[[str, str | None, str, dict[str, Any]], None]

__all__ = ["MAX_IDENTITIES", "DesiredSubscription", "Registry", "SharedAccessPolicy"]

_log = get_logger("sim.iothub.registry")
MAX_IDENTITIES = 1_000_000


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Registry:
    """Identities, twins and policies of one emulated hub."""

    def __init__(
        self,
        hub_name: str = "myhub",
        *,
        host_name: str | None = None,
        max_identities: int = MAX_IDENTITIES,
        clock: Callable[[], dt.datetime] = _utcnow,
    ) -> None:
        self.hub_name = hub_name
        # The realistic host device tokens name; service tokens may name the host:port dialled.
        self.host_name = host_name or f"{hub_name}.azure-devices.net"
        self.max_identities = max_identities
        self._clock = clock
        self._lock = threading.RLock()
        self._sequence = itertools.count(1)
        self._devices: dict[str, Identity] = {}
        self._identity_total = 0
        self._subscriptions = DesiredSubscriptions()
        self._identity_listeners = IdentityListeners()
        self._twin_listeners: list[TwinListener] = []
        self.policies: dict[str, SharedAccessPolicy] = default_policies()

    # -- state helpers -------------------------------------------------------------------

    def reset(self) -> None:
        """Forget every identity and twin; policies and their keys stay."""
        with self._lock:
            self._devices.clear()
            self._identity_total = 0

    def _etag(self) -> str:
        return base64.b64encode(str(next(self._sequence)).encode()).decode()

    def _twin_etag(self) -> str:
        return base64.b64encode(next(self._sequence).to_bytes(8, "big")).decode()

    def _now(self) -> dt.datetime:
        return self._clock()

    # -- lookups -------------------------------------------------------------------------

    def find(self, device_id: str, module_id: str | None = None) -> Identity | None:
        """The device or module identity, or None."""
        with self._lock:
            device = self._devices.get(device_id)
            if device is None or module_id is None:
                return device
            return device.modules.get(module_id)

    def identity(self, device_id: str, module_id: str | None = None) -> Identity:
        """The device or module identity; 404 `IoTHubError` when absent."""
        with self._lock:
            device = self._devices.get(device_id)
            if device is None:
                raise IoTHubError.device_not_found(device_id)
            if module_id is None:
                return device
            module = device.modules.get(module_id)
            if module is None:
                raise IoTHubError.module_not_found(device_id, module_id)
            return module

    def device_enabled(self, device_id: str) -> bool:
        device = self.find(device_id)
        return device is not None and device.enabled

    def device_resource(self, device_id: str, module_id: str | None = None) -> str:
        """The resource URI a device (or module) SAS token is scoped to."""
        resource = f"{self.host_name}/devices/{device_id}"
        return f"{resource}/modules/{module_id}" if module_id else resource

    def devices(self, top: int | None = None) -> list[Identity]:
        with self._lock:
            listed = list(self._devices.values())
        return listed if top is None else listed[:top]

    def modules(self, device_id: str) -> list[Identity]:
        return list(self.identity(device_id).modules.values())

    # -- identity writes -----------------------------------------------------------------

    @staticmethod
    def _check_if_match(if_match: str | None, etag: str, what: str) -> None:
        # The SDK quotes every etag it sends, the wildcard included (`"*"`).
        wanted = None if if_match is None else if_match.strip().removeprefix("W/").strip('"')
        if wanted in {None, "*"}:
            return
        if wanted != etag:
            raise IoTHubError.precondition_failed(what)

    def _new_identity(
        self, device_id: str, module_id: str | None, body: dict[str, Any]
    ) -> Identity:
        settings = identity_settings(body, None, module=module_id is not None)
        if self._identity_total >= self.max_identities:
            raise IoTHubError(403, "IotHubQuotaExceeded", "Total number of identities exceeded")
        now = self._now()
        identity = Identity(
            device_id=device_id,
            module_id=module_id,
            authentication=settings.pop("authentication"),
            etag=self._etag(),
            generation_id=str(secrets.randbelow(10**18)).zfill(18),
            twin_etag=self._twin_etag(),
            created=now,
            status_updated_time=now,
        )
        for attribute, value in settings.items():
            setattr(identity, attribute, value)
        stamp = {"$lastUpdated": format_time(now)}
        identity.desired.metadata = {**stamp, "$lastUpdatedVersion": 1}
        identity.reported.metadata = dict(stamp)
        return identity

    def _update_identity(self, identity: Identity, body: dict[str, Any]) -> None:
        settings = identity_settings(body, identity, module=identity.module_id is not None)
        if settings.get("status", identity.status) != identity.status:
            identity.status_updated_time = self._now()
        for attribute, value in settings.items():
            setattr(identity, attribute, value)
        identity.etag = self._etag()

    def put_device(self, device_id: str, body: dict[str, Any], if_match: str | None) -> Identity:
        """PUT /devices/{id}: create without If-Match, update with it."""
        validate_identifier(device_id, "DeviceId")
        if body.get("deviceId") not in {None, device_id}:
            raise IoTHubError.argument_invalid("deviceId in the body does not match the URL")
        with self._lock:
            return self._put_identity(
                self._devices,
                device_id,
                None,
                body,
                if_match,
                exists=IoTHubError(
                    409,
                    "DeviceAlreadyExists",
                    f"A device with ID '{device_id}' is already registered",
                ),
                missing=IoTHubError.device_not_found(device_id),
            )

    def delete_device(self, device_id: str, if_match: str | None) -> None:
        """DELETE /devices/{id}, with its modules and twin."""
        with self._lock:
            device = self.identity(device_id)
            self._check_if_match(if_match, device.etag, "device")
            del self._devices[device_id]
            self._identity_total -= 1 + len(device.modules)
            self._identity_listeners.notify("deleted", device_id, None)

    def put_module(
        self, device_id: str, module_id: str, body: dict[str, Any], if_match: str | None
    ) -> Identity:
        """PUT /devices/{id}/modules/{mid}, with the same If-Match rules as devices."""
        validate_identifier(module_id, "ModuleId")
        if body.get("moduleId") not in {None, module_id}:
            raise IoTHubError.argument_invalid("moduleId in the body does not match the URL")
        with self._lock:
            return self._put_identity(
                self.identity(device_id).modules,
                device_id,
                module_id,
                body,
                if_match,
                exists=IoTHubError(
                    409,
                    "ModuleAlreadyExistsOnDevice",
                    f"A module with ID '{module_id}' already exists on device '{device_id}'",
                ),
                missing=IoTHubError.module_not_found(device_id, module_id),
            )

    def _put_identity(
        self,
        table: dict[str, Identity],
        device_id: str,
        module_id: str | None,
        body: dict[str, Any],
        if_match: str | None,
        *,
        exists: IoTHubError,
        missing: IoTHubError,
    ) -> Identity:
        """Create (no If-Match) or update (If-Match) a device or module; lock held."""
        key = module_id if module_id is not None else device_id
        existing = table.get(key)
        if if_match is None:
            if existing is not None:
                raise exists
            identity = self._new_identity(device_id, module_id, body)
            table[key] = identity
            self._identity_total += 1
            self._identity_listeners.notify("created", device_id, module_id)
            return identity
        if existing is None:
            raise missing
        self._check_if_match(if_match, existing.etag, "module" if module_id else "device")
        self._update_identity(existing, body)
        self._identity_listeners.notify("updated", device_id, module_id)
        return existing

    def delete_module(self, device_id: str, module_id: str, if_match: str | None) -> None:
        with self._lock:
            module = self.identity(device_id, module_id)
            self._check_if_match(if_match, module.etag, "module")
            del self._devices[device_id].modules[module_id]
            self._identity_total -= 1
            self._identity_listeners.notify("deleted", device_id, module_id)

    # -- twins (service side) ------------------------------------------------------------

    def twin(self, device_id: str, module_id: str | None = None) -> dict[str, Any]:
        """GET /twins/{id}[/modules/{mid}]: the twin document."""
        with self._lock:
            identity = self.identity(device_id, module_id)
            return identity.twin_json(self._devices[device_id])

    def _twin_written(self, identity: Identity) -> None:
        identity.twin_version += 1
        identity.twin_etag = self._twin_etag()

    def update_twin(
        self,
        device_id: str,
        body: dict[str, Any],
        if_match: str | None,
        module_id: str | None = None,
    ) -> dict[str, Any]:
        """PATCH /twins/{id}: merge-patch tags and desired; reported is not the service's."""
        with self._lock:
            identity = self.identity(device_id, module_id)
            self._check_if_match(if_match, identity.twin_etag, "twin")
            tags, desired = _tags_and_desired(body)
            # Empty sections change nothing, so they bump no version either.
            tags = strip_system_keys(tags or {})
            desired = strip_system_keys(desired or {})
            validate_section(tags, "tags")
            merged_tags = merge_patch(identity.tags, tags)
            validate_section(merged_tags, "tags")
            if desired:
                identity.desired.patch(desired, format_time(self._now()))
            identity.tags = merged_tags
            if desired:
                self._notify(identity, {**desired, "$version": identity.desired.version})
            if tags or desired:
                self._twin_written(identity)
                change: dict[str, Any] = {"version": identity.twin_version}
                if tags:
                    change["tags"] = tags
                if desired:
                    version = identity.desired.version
                    change["properties"] = {"desired": {**desired, "$version": version}}
                self._twin_changed(identity, "updateTwin", change)
            return identity.twin_json(self._devices[device_id])

    def replace_twin(
        self,
        device_id: str,
        body: dict[str, Any],
        if_match: str | None,
        module_id: str | None = None,
    ) -> dict[str, Any]:
        """PUT /twins/{id}: replace tags and desired entirely; reported is left alone."""
        with self._lock:
            identity = self.identity(device_id, module_id)
            self._check_if_match(if_match, identity.twin_etag, "twin")
            tags, desired = _tags_and_desired(body)
            tags = strip_system_keys(tags or {})
            validate_section(tags, "tags")
            identity.desired.replace(desired or {}, format_time(self._now()))
            identity.tags = tags
            self._twin_written(identity)
            whole = identity.desired.document(with_metadata=False)
            self._notify(identity, whole)
            change = {"version": identity.twin_version, "tags": dict(tags)}
            self._twin_changed(
                identity, "replaceTwin", {**change, "properties": {"desired": whole}}
            )
            return identity.twin_json(self._devices[device_id])

    # -- twins (device side) -------------------------------------------------------------

    def twin_properties(self, device_id: str, module_id: str | None = None) -> dict[str, Any]:
        """`{"desired": {..., "$version"}, "reported": {..., "$version"}}` for MQTT twin GET."""
        with self._lock:
            identity = self.identity(device_id, module_id)
            return {
                "desired": identity.desired.document(with_metadata=False),
                "reported": identity.reported.document(with_metadata=False),
            }

    def patch_reported(
        self, device_id: str, patch: dict[str, Any], module_id: str | None = None
    ) -> int:
        """Merge a device's reported patch; return the new reported `$version`."""
        if not isinstance(patch, dict):
            raise IoTHubError.argument_invalid("reported properties patch must be a JSON object")
        with self._lock:
            identity = self.identity(device_id, module_id)
            identity.reported.patch(patch, format_time(self._now()))
            self._twin_written(identity)
            reported = {**patch, "$version": identity.reported.version}
            change = {"version": identity.twin_version, "properties": {"reported": reported}}
            self._twin_changed(identity, "updateTwin", change)
            return identity.reported.version

    def subscribe_desired(
        self,
        device_id: str,
        module_id: str | None = None,
        callback: Callable[[dict[str, Any]], None] | None = None,
    ) -> DesiredSubscription:
        """Deliver this identity's desired patches (with `$version`) until closed."""
        return self._subscriptions.subscribe((device_id, module_id), callback)

    def add_identity_listener(self, listener: IdentityListener) -> Callable[[], None]:
        """Tell `listener(event, device_id, module_id)` of changes; returns its remover."""
        return self._identity_listeners.add(listener)

    def add_twin_listener(self, listener: TwinListener) -> Callable[[], None]:
        """Tell `listener(device_id, module_id, op_type, body)` of every twin write."""
        with self._lock:
            self._twin_listeners.append(listener)

        def remove() -> None:
            with self._lock:
                if listener in self._twin_listeners:
                    self._twin_listeners.remove(listener)

        return remove

    def _twin_changed(self, identity: Identity, op_type: str, body: dict[str, Any]) -> None:
        for listener in list(self._twin_listeners):
            listener(identity.device_id, identity.module_id, op_type, body)

    def _notify(self, identity: Identity, patch: dict[str, Any]) -> None:
        self._subscriptions.notify((identity.device_id, identity.module_id), patch)

    def set_connection_state(
        self, device_id: str, connected: bool, module_id: str | None = None
    ) -> None:
        """Mark an identity Connected or Disconnected, stamping both times."""
        with self._lock:
            identity = self.identity(device_id, module_id)
            now = self._now()
            identity.connection_state = "Connected" if connected else "Disconnected"
            identity.connection_state_updated_time = now
            identity.last_activity_time = now

    def record_activity(self, device_id: str, module_id: str | None = None) -> None:
        """Stamp `lastActivityTime` (a message, a twin call, a method reply)."""
        with self._lock:
            self.identity(device_id, module_id).last_activity_time = self._now()

    # -- query ---------------------------------------------------------------------------

    def query(self, query: str | Query) -> list[dict[str, Any]]:
        """Run a query (see `bridge_sim.iothub.query`) over twins; QueryError when malformed."""
        parsed = parse_query(query) if isinstance(query, str) else query
        with self._lock:
            if parsed.source == "devices":
                documents = [device.twin_json() for device in self._devices.values()]
            else:
                documents = [
                    module.twin_json(device)
                    for device in self._devices.values()
                    for module in device.modules.values()
                ]
        return parsed.run(documents)

    def statistics(self) -> dict[str, int]:
        """Device counts for `GET /statistics/devices` and `/statistics/service`."""
        with self._lock:
            devices = list(self._devices.values())
        enabled = sum(device.enabled for device in devices)
        return {
            "totalDeviceCount": len(devices),
            "enabledDeviceCount": enabled,
            "disabledDeviceCount": len(devices) - enabled,
            "connectedDeviceCount": sum(device.connected for device in devices),
        }


def _tags_and_desired(body: dict[str, Any]) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    tags = body.get("tags")
    properties = body.get("properties") or {}
    if not isinstance(properties, dict):
        raise IoTHubError.argument_invalid("properties must be a JSON object")
    desired = properties.get("desired")
    for name, value in (("tags", tags), ("desired", desired)):
        if value is not None and not isinstance(value, dict):
            raise IoTHubError.argument_invalid(f"{name} must be a JSON object")
    return tags, desired
