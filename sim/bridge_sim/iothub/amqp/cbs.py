"""Who a put-token (or a SASL PLAIN login) authorizes, checked as IoT Hub checks device SAS.

A device SDK puts a token on `$cbs` with application properties `operation=put-token`,
`type=servicebus.windows.net:sastoken` (the C and Node SDKs; `azure-devices.net:sastoken`
is accepted too) and `name=<audience>`, the token's `sr`: `{host}/devices/{id}` or
`{host}/devices/{id}/modules/{mid}`, url-encoded by the Node SDK and plain by the C SDK.
The body is the token as an AMQP string. IoT Hub answers `status-code` 200 (the Node SDK
treats anything else as a failure) with `correlation-id` = the request's message id.

SASL PLAIN, the older way (and still the C SDK's option): user name
`{id}@sas.{hub-name}` or `{id}/modules/{mid}@sas.{hub-name}`, password the SAS token.
"""

from __future__ import annotations

import copy
import re
from typing import TYPE_CHECKING
from urllib.parse import unquote_plus

from bridge_sim.iothub.mqtt.auth import AuthResult
from bridge_sim.iothub.sas import SasError, verify_token

if TYPE_CHECKING:
    from bridge_sim.iothub.registry import Registry

__all__ = ["TOKEN_TYPES", "CbsRefusal", "authorize", "parse_audience", "parse_plain_user"]

TOKEN_TYPES = frozenset({"servicebus.windows.net:sastoken", "azure-devices.net:sastoken"})
_AUDIENCE = re.compile(
    r"^(?P<host>[^/]+)/devices/(?P<device>[^/]+)(?:/modules/(?P<module>[^/]+))?/?$"
)
_PLAIN_USER = re.compile(r"^(?P<device>[^/@]+)(?:/modules/(?P<module>[^/@]+))?@sas\.(?P<hub>.+)$")


class CbsRefusal(Exception):  # noqa: N818 - a refusal is not a bug
    """The token does not authorize anyone: answer `status` with the reason."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def parse_audience(audience: str, hub_hostname: str) -> tuple[str, str | None]:
    """(device id, module id or None) of a device or module audience; CbsRefusal if neither."""
    match = _AUDIENCE.match(unquote_plus(audience.strip()))
    if match is None:
        raise CbsRefusal(400, f"audience {audience!r} names no device or module")
    if match["host"].lower() != hub_hostname.lower():
        raise CbsRefusal(401, f"audience names hub {match['host']!r}")
    return match["device"], match["module"]


def parse_plain_user(user: str, hub_name: str) -> tuple[str, str | None]:
    """(device id, module id or None) of a SASL PLAIN user name; CbsRefusal if malformed."""
    match = _PLAIN_USER.match(user)
    if match is None or match["hub"].lower() != hub_name.lower():
        raise CbsRefusal(401, "SASL PLAIN user is not {id}@sas.{hub}")
    return match["device"], match["module"]


def authorize(registry: Registry, device_id: str, module_id: str | None, token: str) -> AuthResult:
    """The identity a SAS token proves, with its expiry; CbsRefusal (401) when it does not."""
    identity = registry.find(device_id, module_id)
    if identity is None:
        raise CbsRefusal(401, "identity not registered")
    if not registry.device_enabled(device_id):
        raise CbsRefusal(401, "device is disabled")
    authentication = copy.deepcopy(identity.authentication)
    if authentication.type != "sas":
        raise CbsRefusal(401, "identity does not use SAS")
    try:
        expiry = verify_token(
            token,
            authentication.sas_keys,
            resource=registry.device_resource(device_id, module_id),
        ).expiry
    except SasError as error:
        raise CbsRefusal(401, f"SAS rejected: {error}") from error
    return AuthResult(
        device_id=device_id,
        module_id=module_id,
        auth_type=authentication.type,
        authentication=authentication,
        generation_id=identity.generation_id,
        token_expiry=expiry,
    )
