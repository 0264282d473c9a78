"""Authenticating an MQTT CONNECT as IoT Hub does: SAS token, thumbprint or CA chain.

Return codes follow what IoT Hub sends: 4 (bad user name or password) for a wrong, expired
or misdirected SAS token, 5 (not authorized) for an unknown identity, a disabled device,
an unknown certificate or an authentication type the credentials do not fit; 2 for a client
id that does not match the user name, 1 for any protocol but MQTT 3.1.1.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID
from OpenSSL import crypto

from bridge_sim.iothub.identity import Authentication
from bridge_sim.iothub.sas import SasError, verify_token

if TYPE_CHECKING:
    from collections.abc import Sequence

    from cryptography import x509

    from bridge_sim.iothub.mqtt.codec import Connect
    from bridge_sim.iothub.registry import Registry

__all__ = ["AuthResult", "ConnectRefusedError", "authenticate"]

ACCEPTED = 0
REFUSED_PROTOCOL = 1
REFUSED_IDENTIFIER = 2
REFUSED_SERVER_UNAVAILABLE = 3
REFUSED_BAD_CREDENTIALS = 4
REFUSED_NOT_AUTHORIZED = 5

# The `type` IoT Hub writes into the `iothub-connection-auth-method` annotation.
_AUTH_METHOD_TYPES = {
    "sas": "sas",
    "selfSigned": "x509Certificate",
    "certificateAuthority": "x509Ca",
}


class ConnectRefusedError(Exception):
    """CONNECT must be answered with CONNACK `return_code` and the connection closed."""

    def __init__(self, return_code: int, reason: str) -> None:
        super().__init__(reason)
        self.return_code = return_code
        self.reason = reason


@dataclass(frozen=True)
class AuthResult:
    """Who connected, how, and the credentials they proved (to spot a later re-key)."""

    device_id: str
    module_id: str | None
    auth_type: str
    authentication: Authentication
    generation_id: str
    # Epoch seconds at which the SAS token lapses; IoT Hub then drops the connection.
    token_expiry: int | None = None

    @property
    def key(self) -> tuple[str, str | None]:
        return self.device_id, self.module_id

    @functools.cached_property
    def auth_method_annotation(self) -> str:
        """`iothub-connection-auth-method` as IoT Hub stamps it on telemetry."""
        return json.dumps(
            {
                "scope": "module" if self.module_id else "device",
                "type": _AUTH_METHOD_TYPES.get(self.auth_type, self.auth_type),
                "issuer": "iothub",
                "acceptingIpFilterRule": None,
            },
            separators=(",", ":"),
        )


def _parse_username(username: str | None, hub_hostname: str) -> tuple[str, str | None]:
    # `{hub}/{deviceId}[/{moduleId}]/?api-version=...`
    path, _, _query = (username or "").partition("/?")
    parts = path.rstrip("/").split("/")
    if len(parts) not in {2, 3} or not all(parts):
        raise ConnectRefusedError(REFUSED_BAD_CREDENTIALS, "malformed user name")
    if parts[0].lower() != hub_hostname.lower():
        raise ConnectRefusedError(REFUSED_BAD_CREDENTIALS, f"user name names hub {parts[0]!r}")
    return parts[1], parts[2] if len(parts) == 3 else None


def _thumbprints(cert: x509.Certificate) -> set[str]:
    der = cert.public_bytes(serialization.Encoding.DER)
    sha1 = hashlib.sha1(der).hexdigest().upper()  # noqa: S324 - IoT Hub's thumbprint format
    return {sha1, hashlib.sha256(der).hexdigest().upper()}


def _check_ca_chain(
    leaf: x509.Certificate,
    intermediates: Sequence[x509.Certificate],
    trusted_cas: Sequence[x509.Certificate],
    device_id: str,
) -> None:
    if not trusted_cas:
        raise ConnectRefusedError(REFUSED_NOT_AUTHORIZED, "no CA is trusted for this hub")
    # OpenSSL's chain check, not cryptography's webpki policy: device certificates rarely
    # carry the subjectAltName that policy insists on, and IoT Hub does not need one.
    store = crypto.X509Store()
    for ca in trusted_cas:
        store.add_cert(crypto.X509.from_cryptography(ca))
    context = crypto.X509StoreContext(
        store,
        crypto.X509.from_cryptography(leaf),
        [crypto.X509.from_cryptography(cert) for cert in intermediates],
    )
    try:
        context.verify_certificate()
    except crypto.X509StoreContextError as error:
        raise ConnectRefusedError(REFUSED_NOT_AUTHORIZED, f"chain not trusted: {error}") from error
    names = leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not names or names[0].value != device_id:
        raise ConnectRefusedError(REFUSED_NOT_AUTHORIZED, "certificate CN is not the device id")


def authenticate(
    connect: Connect,
    *,
    registry: Registry,
    hub_hostname: str,
    client_certificate: x509.Certificate | None,
    client_chain: Sequence[x509.Certificate],
    trusted_cas: Sequence[x509.Certificate],
) -> AuthResult:
    """Decide a CONNECT; raise ConnectRefusedError with the CONNACK code on refusal."""
    if connect.protocol_name != "MQTT" or connect.protocol_level != 4:
        raise ConnectRefusedError(REFUSED_PROTOCOL, "only MQTT 3.1.1 is supported")
    device_id, module_id = _parse_username(connect.username, hub_hostname)
    expected_client_id = f"{device_id}/{module_id}" if module_id else device_id
    if connect.client_id != expected_client_id:
        raise ConnectRefusedError(REFUSED_IDENTIFIER, "client id does not match the user name")
    identity = registry.find(device_id, module_id)
    if identity is None:
        raise ConnectRefusedError(REFUSED_NOT_AUTHORIZED, "identity not registered")
    if not registry.device_enabled(device_id):
        raise ConnectRefusedError(REFUSED_NOT_AUTHORIZED, "device is disabled")
    authentication = copy.deepcopy(identity.authentication)
    token_expiry = None
    # umqtt and other small clients send an empty password whenever they send a user
    # name; with a client certificate that is X.509, not a SAS attempt.
    password = connect.password
    if password == b"" and client_certificate is not None:
        password = None
    if password is not None:
        if authentication.type != "sas":
            raise ConnectRefusedError(REFUSED_NOT_AUTHORIZED, "identity does not use SAS")
        try:
            token_expiry = verify_token(
                password.decode("utf-8", "replace"),
                authentication.sas_keys,
                resource=registry.device_resource(device_id, module_id),
            ).expiry
        except SasError as error:
            raise ConnectRefusedError(REFUSED_BAD_CREDENTIALS, f"SAS rejected: {error}") from error
    elif client_certificate is None:
        raise ConnectRefusedError(REFUSED_NOT_AUTHORIZED, "neither a SAS token nor a certificate")
    elif authentication.type == "selfSigned":
        if not _thumbprints(client_certificate) & set(authentication.thumbprints):
            raise ConnectRefusedError(REFUSED_NOT_AUTHORIZED, "certificate thumbprint unknown")
    elif authentication.type == "certificateAuthority":
        _check_ca_chain(client_certificate, client_chain, trusted_cas, device_id)
    else:
        raise ConnectRefusedError(REFUSED_NOT_AUTHORIZED, "identity does not use X.509")
    return AuthResult(
        device_id=device_id,
        module_id=module_id,
        auth_type=authentication.type,
        authentication=authentication,
        generation_id=identity.generation_id,
        token_expiry=token_expiry,
    )
