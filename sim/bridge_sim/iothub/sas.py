"""Shared access signature tokens as IoT Hub issues and checks them.

A token reads `SharedAccessSignature sr=<resource>&sig=<signature>&se=<expiry>[&skn=<policy>]`.
The signature is HMAC-SHA256, keyed with the base64-decoded key, over the url-encoded
resource exactly as it appears in the token, a newline, and the expiry in epoch seconds.
Service tokens name a shared access policy in `skn`; device tokens leave it out.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from urllib.parse import quote, quote_plus, unquote, unquote_plus

__all__ = [
    "SasError",
    "SasToken",
    "generate_key",
    "generate_token",
    "parse_token",
    "sign",
    "verify_token",
]

_PREFIX = "SharedAccessSignature "


class SasError(ValueError):
    """Raised when a token is malformed, forged, expired or for another resource."""


@dataclass(frozen=True)
class SasToken:
    """The fields of a parsed token; `resource_encoded` is `sr` as sent, as signed."""

    resource_encoded: str
    signature: str
    expiry: int
    key_name: str | None

    @property
    def resource(self) -> str:
        """The resource URI, decoded (`myhub.azure-devices.net/devices/d1`)."""
        return unquote_plus(self.resource_encoded)


def generate_key(size: int = 32) -> str:
    """A random base64 key, the shape IoT Hub generates for devices and policies."""
    return base64.b64encode(secrets.token_bytes(size)).decode()


def sign(resource_encoded: str, expiry: int, key_b64: str) -> str:
    """Base64 HMAC-SHA256 of `resource_encoded + "\\n" + expiry` under the decoded key."""
    try:
        key = base64.b64decode(key_b64, validate=True)
    except (binascii.Error, ValueError) as error:
        raise SasError("key is not base64") from error
    message = f"{resource_encoded}\n{expiry}".encode()
    return base64.b64encode(hmac.new(key, message, hashlib.sha256).digest()).decode()


def generate_token(
    resource: str,
    key_b64: str,
    *,
    key_name: str | None = None,
    ttl: int = 3600,
    expiry: int | None = None,
) -> str:
    """Build a token for `resource` (plain, e.g. `host` or `host/devices/d1`) as the SDKs do."""
    resource_encoded = quote_plus(resource)
    se = int(time.time()) + ttl if expiry is None else expiry
    token = (
        f"{_PREFIX}sr={resource_encoded}&sig={quote(sign(resource_encoded, se, key_b64))}&se={se}"
    )
    return f"{token}&skn={key_name}" if key_name else token


def parse_token(token: str) -> SasToken:
    """Split a token into its fields; raise SasError when one is missing or malformed."""
    if not token.startswith(_PREFIX):
        raise SasError("not a SharedAccessSignature")
    fields: dict[str, str] = {}
    for part in token[len(_PREFIX) :].strip().split("&"):
        name, sep, value = part.partition("=")
        if not sep or name in fields:
            raise SasError(f"malformed field {name!r}")
        fields[name] = value
    missing = {"sr", "sig", "se"} - fields.keys()
    if missing:
        raise SasError(f"missing {', '.join(sorted(missing))}")
    try:
        expiry = int(fields["se"])
    except ValueError as error:
        raise SasError("se is not an integer") from error
    return SasToken(
        resource_encoded=fields["sr"],
        signature=unquote(fields["sig"]),
        expiry=expiry,
        key_name=fields.get("skn"),
    )


def _resource_matches(granted: str, wanted: str) -> bool:
    # IoT Hub grants a token for a prefix of the resource, compared case-insensitively.
    granted, wanted = granted.rstrip("/").lower(), wanted.rstrip("/").lower()
    return wanted == granted or wanted.startswith(granted + "/")


def verify_token(
    token: SasToken | str,
    keys: tuple[str, ...] | list[str],
    *,
    resource: str | None = None,
    now: float | None = None,
) -> SasToken:
    """Check signature (against any of `keys`), expiry and optionally scope; return the token."""
    parsed = parse_token(token) if isinstance(token, str) else token
    if parsed.expiry <= (time.time() if now is None else now):
        raise SasError("token expired")
    if resource is not None and not _resource_matches(parsed.resource, resource):
        raise SasError(f"token is for {parsed.resource!r}, not {resource!r}")
    for key in keys:
        expected = sign(parsed.resource_encoded, parsed.expiry, key)
        if hmac.compare_digest(expected.encode(), parsed.signature.encode()):
            return parsed
    raise SasError("signature does not match")
