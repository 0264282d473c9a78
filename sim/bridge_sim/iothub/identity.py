"""Device and module identities, their authentication, and their JSON as IoT Hub sends it."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from bridge_sim.iothub.errors import IoTHubError
from bridge_sim.iothub.sas import generate_key
from bridge_sim.iothub.twin import TwinSection

__all__ = [
    "NEVER",
    "AuthType",
    "Authentication",
    "Identity",
    "format_time",
    "validate_identifier",
]

AuthType = Literal["sas", "selfSigned", "certificateAuthority", "none"]
# IoT Hub reports "never" as the first instant of year 1.
NEVER = "0001-01-01T00:00:00Z"
_IDENTIFIER = re.compile(r"^[A-Za-z0-9\-.%_*?!(),:=@$']{1,128}$")
_THUMBPRINT = re.compile(r"^(?:[0-9A-Fa-f]{40}|[0-9A-Fa-f]{64})$")


def format_time(moment: dt.datetime | None) -> str:
    """ISO 8601 in UTC with a `Z`, or IoT Hub's "never"."""
    if moment is None:
        return NEVER
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def validate_identifier(value: Any, what: str) -> str:
    """Return `value` if it is a legal device or module id, else raise 400."""
    if not isinstance(value, str) or not _IDENTIFIER.match(value):
        raise IoTHubError.argument_invalid(
            f"{what} '{value}' is invalid: up to 128 ASCII letters, digits and -.%_*?!(),:=@$'"
        )
    return value


def _check_key(key: Any) -> str:
    try:
        decoded = base64.b64decode(str(key), validate=True)
    except (binascii.Error, ValueError):
        decoded = b""
    if not 16 <= len(decoded) <= 64:
        raise IoTHubError(400, "IotHubInvalidKey", "Symmetric keys must be base64, 16 to 64 bytes")
    return str(key)


def _check_thumbprint(value: Any, *, required: bool) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str) or not _THUMBPRINT.match(value):
        raise IoTHubError.argument_invalid("Thumbprints must be 40 or 64 hexadecimal characters")
    return value.upper()


@dataclass
class Authentication:
    """How an identity proves itself: SAS keys, certificate thumbprints, a CA chain, or none."""

    type: AuthType = "sas"
    primary_key: str | None = None
    secondary_key: str | None = None
    primary_thumbprint: str | None = None
    secondary_thumbprint: str | None = None

    @classmethod
    def from_json(cls, body: Any, *, allow_none: bool) -> Authentication:
        """Validate a request's `authentication`; generate SAS keys that were left out."""
        body = body if isinstance(body, dict) else {}
        kind = body.get("type") or "sas"
        if kind == "sas":
            keys = body.get("symmetricKey") or {}
            return cls(
                "sas",
                primary_key=_check_key(keys.get("primaryKey") or generate_key()),
                secondary_key=_check_key(keys.get("secondaryKey") or generate_key()),
            )
        if kind == "selfSigned":
            prints = body.get("x509Thumbprint") or {}
            return cls(
                "selfSigned",
                primary_thumbprint=_check_thumbprint(
                    prints.get("primaryThumbprint"), required=True
                ),
                secondary_thumbprint=_check_thumbprint(
                    prints.get("secondaryThumbprint"), required=False
                ),
            )
        if kind == "certificateAuthority":
            return cls("certificateAuthority")
        if kind == "none" and allow_none:
            return cls("none")
        raise IoTHubError.argument_invalid(f"Authentication type '{kind}' is not supported here")

    @property
    def sas_keys(self) -> tuple[str, ...]:
        """The keys a SAS token may be signed with (empty unless type is `sas`)."""
        return tuple(key for key in (self.primary_key, self.secondary_key) if key)

    @property
    def thumbprints(self) -> tuple[str, ...]:
        """Upper-case hex thumbprints a self-signed certificate may match."""
        return tuple(t for t in (self.primary_thumbprint, self.secondary_thumbprint) if t)

    def to_json(self) -> dict[str, Any]:
        return {
            "symmetricKey": {"primaryKey": self.primary_key, "secondaryKey": self.secondary_key},
            "x509Thumbprint": {
                "primaryThumbprint": self.primary_thumbprint,
                "secondaryThumbprint": self.secondary_thumbprint,
            },
            "type": self.type,
        }


def identity_settings(
    body: dict[str, Any], current: Identity | None, *, module: bool
) -> dict[str, Any]:
    """Validate a PUT body into `Identity` attributes; on update, absent fields stay as they are.

    Everything is checked before anything changes, so a rejected update leaves no trace.
    """
    settings: dict[str, Any] = {}
    if current is None or body.get("authentication") is not None:
        settings["authentication"] = Authentication.from_json(
            body.get("authentication"), allow_none=module
        )
    if module:
        if current is None or "managedBy" in body:
            settings["managed_by"] = body.get("managedBy")
        return settings
    status = body.get("status") or (current.status if current else "enabled")
    if status not in {"enabled", "disabled"}:
        raise IoTHubError.argument_invalid(f"Invalid status '{status}'")
    settings["status"] = status
    # A new device takes every field, absent ones as defaults; an update only those sent.
    optional = {"statusReason", "capabilities", "deviceScope", "parentScopes"}
    present = optional if current is None else optional & set(body)
    if "statusReason" in present:
        settings["status_reason"] = body.get("statusReason")
    if "capabilities" in present:
        settings["iot_edge"] = bool((body.get("capabilities") or {}).get("iotEdge", False))
    if "deviceScope" in present:
        settings["device_scope"] = body.get("deviceScope")
    if "parentScopes" in present:
        settings["parent_scopes"] = list(body.get("parentScopes") or [])
    return settings


@dataclass
class Identity:
    """A device (`module_id is None`) or module identity together with its twin."""

    device_id: str
    module_id: str | None
    authentication: Authentication
    etag: str
    generation_id: str
    twin_etag: str
    created: dt.datetime
    status: str = "enabled"
    status_reason: str | None = None
    status_updated_time: dt.datetime | None = None
    connection_state: str = "Disconnected"
    connection_state_updated_time: dt.datetime | None = None
    last_activity_time: dt.datetime | None = None
    cloud_to_device_message_count: int = 0
    iot_edge: bool = False
    device_scope: str | None = None
    parent_scopes: list[str] = field(default_factory=list)
    managed_by: str | None = None
    tags: dict[str, Any] = field(default_factory=dict)
    desired: TwinSection = field(default_factory=lambda: TwinSection("desired"))
    reported: TwinSection = field(default_factory=lambda: TwinSection("reported"))
    twin_version: int = 1
    modules: dict[str, Identity] = field(default_factory=dict)

    @property
    def enabled(self) -> bool:
        return self.status == "enabled"

    @property
    def connected(self) -> bool:
        return self.connection_state == "Connected"

    def identity_json(self) -> dict[str, Any]:
        """The body of `Device` or `Module` in the SDK's models."""
        body: dict[str, Any] = {
            "deviceId": self.device_id,
            "generationId": self.generation_id,
            "etag": self.etag,
            "connectionState": self.connection_state,
            "connectionStateUpdatedTime": format_time(self.connection_state_updated_time),
            "lastActivityTime": format_time(self.last_activity_time),
            "cloudToDeviceMessageCount": self.cloud_to_device_message_count,
            "authentication": self.authentication.to_json(),
        }
        if self.module_id is not None:
            body["moduleId"] = self.module_id
            body["managedBy"] = self.managed_by
            return body
        body |= {
            "status": self.status,
            "statusReason": self.status_reason,
            "statusUpdatedTime": format_time(self.status_updated_time),
            "capabilities": {"iotEdge": self.iot_edge},
            "deviceScope": self.device_scope,
            "parentScopes": list(self.parent_scopes),
        }
        return body

    def twin_json(self, device: Identity | None = None) -> dict[str, Any]:
        """The twin document; a module's status comes from its device (`device`)."""
        owner = device or self
        body: dict[str, Any] = {"deviceId": self.device_id}
        if self.module_id is not None:
            body["moduleId"] = self.module_id
        body |= {
            "etag": self.twin_etag,
            "deviceEtag": self.etag,
            "status": owner.status,
            "statusUpdateTime": format_time(owner.status_updated_time),
            "connectionState": self.connection_state,
            "lastActivityTime": format_time(self.last_activity_time),
            "cloudToDeviceMessageCount": self.cloud_to_device_message_count,
            "authenticationType": self.authentication.type,
            "x509Thumbprint": {
                "primaryThumbprint": self.authentication.primary_thumbprint,
                "secondaryThumbprint": self.authentication.secondary_thumbprint,
            },
            "modelId": "",
            "version": self.twin_version,
            "tags": dict(self.tags),
            "properties": {
                "desired": self.desired.document(),
                "reported": self.reported.document(),
            },
        }
        if self.module_id is None:
            body["capabilities"] = {"iotEdge": self.iot_edge}
            if self.status_reason is not None:
                body["statusReason"] = self.status_reason
        return body
