"""Service connection strings and the SAS tokens signed with them.

A service connection string reads `HostName=<host[:port]>;SharedAccessKeyName=<policy>;
SharedAccessKey=<base64 key>`. The token IoT Hub expects in `Authorization` is the one
azure-iot-hub builds: `SharedAccessSignature sr=<quote_plus(host)>&sig=<quote(base64
HMAC-SHA256(key, sr + "\\n" + se))>&se=<epoch>&skn=<policy>`. Neither the key nor a token
ever appears in a message or a repr.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import quote, quote_plus

from bridge.errors import ConnectionStringError

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["SasTokenSource", "ServiceConnectionString"]

_REQUIRED = ("HostName", "SharedAccessKeyName", "SharedAccessKey")


@dataclass(frozen=True)
class ServiceConnectionString:
    """The parts of a service connection string; the key stays out of repr and str."""

    host_name: str
    policy: str
    key: str = field(repr=False)

    @classmethod
    def parse(cls, text: str) -> ServiceConnectionString:
        """Parse `HostName=...;SharedAccessKeyName=...;SharedAccessKey=...`."""
        parts: dict[str, str] = {}
        for segment in text.strip().split(";"):
            if not segment.strip():
                continue
            name, sep, value = segment.partition("=")
            if not sep:
                raise ConnectionStringError(
                    f"IoT Hub connection string has a part without '=': {name.strip()[:40]!r}"
                )
            parts[name.strip()] = value.strip()
        if "DeviceId" in parts:
            raise ConnectionStringError(
                "this is a device connection string (it has DeviceId); the bridge needs a "
                "service one with SharedAccessKeyName, e.g. iothubowner"
            )
        missing = [name for name in _REQUIRED if not parts.get(name)]
        if missing:
            raise ConnectionStringError(
                f"IoT Hub connection string lacks {', '.join(missing)}"
                " (expected HostName=...;SharedAccessKeyName=...;SharedAccessKey=...)"
            )
        try:
            base64.b64decode(parts["SharedAccessKey"], validate=True)
        except (binascii.Error, ValueError) as error:
            raise ConnectionStringError(
                "IoT Hub connection string: SharedAccessKey is not base64"
            ) from error
        return cls(parts["HostName"], parts["SharedAccessKeyName"], parts["SharedAccessKey"])

    def __str__(self) -> str:
        return f"HostName={self.host_name};SharedAccessKeyName={self.policy};SharedAccessKey=***"


def sign(resource_encoded: str, expiry: int, key_b64: str) -> str:
    """Base64 HMAC-SHA256 of `resource_encoded + "\\n" + expiry` under the decoded key."""
    key = base64.b64decode(key_b64)
    message = f"{resource_encoded}\n{expiry}".encode()
    return base64.b64encode(hmac.new(key, message, hashlib.sha256).digest()).decode()


class SasTokenSource:
    """Hands out a service SAS token for the hub, renewed `renew_before` seconds ahead of expiry.

    Signing is cheap, but hundreds of calls a second need not each sign: one token serves
    them all until it nears its end.
    """

    def __init__(
        self,
        connection: ServiceConnectionString,
        *,
        ttl: int = 3600,
        renew_before: int = 300,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not 0 <= renew_before < ttl:
            raise ValueError("renew_before must be at least 0 and less than ttl")
        self._connection = connection
        self._ttl = ttl
        self._renew_before = renew_before
        self._clock = clock
        self._token = ""
        self._expiry = 0

    @property
    def expiry(self) -> int:
        """Epoch seconds at which the current token expires (0 before the first one)."""
        return self._expiry

    def token(self) -> str:
        """The current token, signing a new one when it is missing or about to expire."""
        now = self._clock()
        if now >= self._expiry - self._renew_before:
            self._expiry = int(now) + self._ttl
            resource = quote_plus(self._connection.host_name)
            # Quoted as azure-iot-hub quotes it (`/` left as is).
            signature = quote(sign(resource, self._expiry, self._connection.key))
            self._token = (
                f"SharedAccessSignature sr={resource}&sig={signature}"
                f"&se={self._expiry}&skn={self._connection.policy}"
            )
        return self._token

    def __repr__(self) -> str:
        return f"SasTokenSource(host_name={self._connection.host_name!r}, expiry={self._expiry})"
