"""Service Bus shared access signatures, as the Event Hubs SDK signs them for `$cbs`.

Unlike IoT Hub's own tokens (`bridge_sim.iothub.sas`), Service Bus keys the HMAC with the
key string's UTF-8 bytes as written in the connection string, not its base64 decoding:
`sig = base64(HMAC-SHA256(key.encode(), quote_plus(sr) + "\\n" + se))`, url-encoded.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, quote_plus, urlparse

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["TokenError", "verify_service_bus_token"]

_PREFIX = "SharedAccessSignature "


class TokenError(ValueError):
    """Raised when a token is malformed, forged, expired or for another entity."""


def _sign(resource: str, expiry: str, key: str) -> str:
    message = f"{quote_plus(resource)}\n{expiry}".encode()
    return base64.b64encode(hmac.new(key.encode(), message, hashlib.sha256).digest()).decode()


def verify_service_bus_token(
    token: str, *, entity: str, keys: Mapping[str, str], now: float | None = None
) -> str:
    """Check a token against the named policy's key and `entity`; return the policy name."""
    if not token.startswith(_PREFIX):
        raise TokenError("not a SharedAccessSignature")
    fields = {name: values[0] for name, values in parse_qs(token[len(_PREFIX) :]).items()}
    missing = {"sr", "sig", "se", "skn"} - fields.keys()
    if missing:
        raise TokenError(f"missing {', '.join(sorted(missing))}")
    key = keys.get(fields["skn"])
    if key is None:
        raise TokenError(f"unknown shared access policy {fields['skn']!r}")
    if not fields["se"].isdigit() or int(fields["se"]) <= (time.time() if now is None else now):
        raise TokenError("token expired")
    expected = _sign(fields["sr"], fields["se"], key)
    if not hmac.compare_digest(expected.encode(), fields["sig"].encode()):
        raise TokenError("signature does not match")
    # The audience is sb://<namespace>/<entity>[/...]; the host may be an alias, the entity not.
    path = urlparse(fields["sr"]).path.strip("/").split("/")
    if path[0].lower() != entity.lower():
        raise TokenError(f"token is for entity {path[0]!r}, not {entity!r}")
    return fields["skn"]
