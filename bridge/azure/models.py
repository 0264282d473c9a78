"""The shapes the service API sends and receives: identities, twins, bulk results.

Field names on the wire are the ones azure-iot-hub 2.7 serializes (spec section 1).
SAS keys never appear in a repr.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "Auth",
    "BulkError",
    "BulkResult",
    "CertificateAuthorityAuth",
    "Device",
    "DeviceIdentity",
    "DeviceImport",
    "ImportMode",
    "Module",
    "SasAuth",
    "Status",
    "Twin",
    "X509Thumbprints",
    "auth_from_json",
]

Status = Literal["enabled", "disabled"]
ImportMode = Literal[
    "create",
    "createOrUpdate",
    "createOrUpdateIfMatchETag",
    "update",
    "updateIfMatchETag",
    "delete",
    "deleteIfMatchETag",
    "updateTwin",
    "updateTwinIfMatchETag",
]
_THUMBPRINT = re.compile(r"^(?:[0-9A-Fa-f]{40}|[0-9A-Fa-f]{64})$")


@dataclass(frozen=True)
class SasAuth:
    """Symmetric keys; IoT Hub generates the keys left out, on updates too: pass them to keep."""

    primary_key: str | None = field(default=None, repr=False)
    secondary_key: str | None = field(default=None, repr=False)

    def to_json(self) -> dict[str, Any]:
        keys = {"primaryKey": self.primary_key, "secondaryKey": self.secondary_key}
        return {"type": "sas", "symmetricKey": keys}


@dataclass(frozen=True)
class X509Thumbprints:
    """`selfSigned`: the SHA-256 (64 hex) or SHA-1 (40 hex) thumbprints of the device's DER."""

    primary: str
    secondary: str | None = None

    def __post_init__(self) -> None:
        for name in ("primary", "secondary"):
            value = getattr(self, name)
            if value is None and name == "secondary":
                continue
            if not isinstance(value, str) or not _THUMBPRINT.match(value.replace(":", "")):
                raise ValueError(f"{name} thumbprint must be 40 or 64 hex digits")
            # IoT Hub stores thumbprints upper case without separators.
            object.__setattr__(self, name, value.replace(":", "").upper())

    def to_json(self) -> dict[str, Any]:
        prints = {"primaryThumbprint": self.primary, "secondaryThumbprint": self.secondary}
        return {"type": "selfSigned", "x509Thumbprint": prints}


@dataclass(frozen=True)
class CertificateAuthorityAuth:
    """`certificateAuthority`: any certificate chaining to a CA registered on the hub."""

    def to_json(self) -> dict[str, Any]:
        return {"type": "certificateAuthority"}


Auth = SasAuth | X509Thumbprints | CertificateAuthorityAuth


def auth_from_json(body: Any) -> Auth:
    """The `authentication` object of a device or module as IoT Hub returns it."""
    body = body if isinstance(body, Mapping) else {}
    kind = body.get("type")
    if kind == "selfSigned":
        prints = body.get("x509Thumbprint") or {}
        return X509Thumbprints(prints["primaryThumbprint"], prints.get("secondaryThumbprint"))
    if kind == "certificateAuthority":
        return CertificateAuthorityAuth()
    keys = body.get("symmetricKey") or {}
    return SasAuth(keys.get("primaryKey"), keys.get("secondaryKey"))


@dataclass(frozen=True)
class DeviceIdentity:
    """What the bridge asks IoT Hub to register for one device."""

    device_id: str
    auth: Auth = field(default_factory=SasAuth)
    status: Status = "enabled"
    status_reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The `Device` body of `PUT /devices/{id}`."""
        body: dict[str, Any] = {"deviceId": self.device_id, "status": self.status}
        if self.status_reason is not None:
            body["statusReason"] = self.status_reason
        return body | {"authentication": self.auth.to_json(), "capabilities": {"iotEdge": False}}


@dataclass(frozen=True)
class Device:
    """A device identity as IoT Hub holds it."""

    device_id: str
    etag: str
    generation_id: str
    status: str
    status_reason: str | None
    auth: Auth
    connection_state: str

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> Device:
        return cls(
            device_id=body["deviceId"],
            etag=body.get("etag") or "",
            generation_id=body.get("generationId") or "",
            status=body.get("status") or "enabled",
            status_reason=body.get("statusReason"),
            auth=auth_from_json(body.get("authentication")),
            connection_state=body.get("connectionState") or "Disconnected",
        )


@dataclass(frozen=True)
class Module:
    """A module identity as IoT Hub holds it."""

    device_id: str
    module_id: str
    etag: str
    generation_id: str
    auth: Auth
    managed_by: str | None

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> Module:
        return cls(
            device_id=body["deviceId"],
            module_id=body["moduleId"],
            etag=body.get("etag") or "",
            generation_id=body.get("generationId") or "",
            auth=auth_from_json(body.get("authentication")),
            managed_by=body.get("managedBy"),
        )


def _section(properties: Mapping[str, Any], name: str) -> tuple[dict[str, Any], int]:
    raw = properties.get(name) or {}
    values = {key: value for key, value in raw.items() if not key.startswith("$")}
    return values, int(raw.get("$version", 0))


@dataclass(frozen=True)
class Twin:
    """A device or module twin: tags and properties without `$metadata`, with versions and etag."""

    device_id: str
    module_id: str | None
    etag: str
    version: int
    tags: dict[str, Any]
    desired: dict[str, Any]
    desired_version: int
    reported: dict[str, Any]
    reported_version: int
    connection_state: str | None = None  # "Connected"/"Disconnected": the device's own link

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> Twin:
        properties = body.get("properties") or {}
        desired, desired_version = _section(properties, "desired")
        reported, reported_version = _section(properties, "reported")
        return cls(
            device_id=body["deviceId"],
            module_id=body.get("moduleId"),
            etag=body.get("etag") or "",
            version=int(body.get("version") or 0),
            tags=dict(body.get("tags") or {}),
            desired=desired,
            desired_version=desired_version,
            reported=reported,
            reported_version=reported_version,
            connection_state=body.get("connectionState"),
        )


@dataclass(frozen=True)
class DeviceImport:
    """One device for a bulk call or an import job, optionally with its twin's tags and desired.

    `etag` and `twin_etag` are for the `...IfMatchETag` modes.
    """

    identity: DeviceIdentity
    tags: Mapping[str, Any] | None = None
    desired: Mapping[str, Any] | None = None
    etag: str | None = None
    twin_etag: str | None = None
    module_id: str | None = None  # a module identity of the device instead of the device

    def to_json(self, mode: ImportMode) -> dict[str, Any]:
        """The `ExportImportDevice` object for `mode`."""
        entry: dict[str, Any] = {"id": self.identity.device_id, "importMode": mode}
        if self.module_id is not None:
            entry["moduleId"] = self.module_id
        if self.etag is not None:
            entry["eTag"] = self.etag
        if mode.startswith("delete"):
            return entry
        if not mode.startswith("updateTwin"):
            identity = self.identity.to_json()
            entry |= {key: identity[key] for key in ("status", "statusReason") if key in identity}
            entry["authentication"] = identity["authentication"]
        if self.twin_etag is not None:
            entry["twinETag"] = self.twin_etag
        if self.tags is not None:
            entry["tags"] = dict(self.tags)
        if self.desired is not None:
            entry["properties"] = {"desired": dict(self.desired)}
        return entry


@dataclass(frozen=True)
class BulkError:
    """Why one device of a bulk call failed."""

    device_id: str
    module_id: str | None
    code: str
    message: str


@dataclass(frozen=True)
class BulkResult:
    """The outcome of bulk calls: the devices sent and those that failed, with the reason."""

    devices: int
    errors: tuple[BulkError, ...] = ()

    @property
    def successful(self) -> bool:
        return not self.errors

    @property
    def failed_ids(self) -> frozenset[str]:
        return frozenset(error.device_id for error in self.errors)

    @classmethod
    def from_json(cls, body: Mapping[str, Any], devices: int) -> BulkResult:
        errors = tuple(
            BulkError(
                device_id=str(error.get("deviceId")),
                module_id=error.get("moduleId"),
                code=str(error.get("errorCode")),
                message=str(error.get("errorStatus") or ""),
            )
            for error in body.get("errors") or ()
        )
        return cls(devices, errors)
