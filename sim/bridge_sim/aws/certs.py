"""Device certificates of the stand-in, and who the MQTT broker lets in.

AWS-issued certificates (CreateKeysAndCertificate, CreateCertificateFromCsr) are signed by
the stand-in's own "device CA", so the broker's TLS layer can verify them; moto signs them
with throw-away keys (and from a CSR, with a key that is not the CSR's). Certificate ids
are SHA-256 of the DER, as in AWS (moto's `use_valid_cert` setting).

Every change to certificates, policies or their attachments is turned into the broker's
principal table. Revocations are applied before the control-plane call returns, so a
deactivated certificate is refused on the very next connection; so are grants while the
registry holds up to 5,000 certificates, beyond which (a large simulated estate being
built) they are coalesced in a background thread.
"""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID
from moto.core.config import default_user_config
from moto.iot.models import FakeCertificate

from bridge.logging import get_logger
from bridge_sim.aws.authz import Principal
from bridge_sim.pki import CertificateAuthority, new_key

if TYPE_CHECKING:
    from bridge_sim.aws.hooks import Call
    from bridge_sim.aws.moto_server import MotoServer

__all__ = ["CertificateRegistry"]

Apply = Callable[[Sequence[Principal], Sequence[str]], None]
log = get_logger("sim.aws.certs")

# Calls that can only take access away: applied before the call returns, always.
_REVOKING = (
    "update_certificate",
    "delete_certificate",
    "update_ca_certificate",
    "delete_ca_certificate",
    "detach_policy",
    "detach_principal_policy",
    "detach_thing_principal",
    "delete_thing",
    "delete_policy",
)
_GRANTING = (
    "create_keys_and_certificate",
    "create_certificate_from_csr",
    "register_certificate",
    "register_certificate_without_ca",
    "register_ca_certificate",
    "attach_policy",
    "attach_principal_policy",
    "attach_thing_principal",
    "create_policy_version",
    "set_default_policy_version",
)
# Up to this many certificates, grants apply before the control-plane call returns too.
# A count, not a measured time: what a client may rely on must not depend on machine load.
_SYNC_CERTIFICATES = 5000
_COALESCE_S = 0.05


def _document(policy: Any) -> str:
    doc = policy.document
    return doc if isinstance(doc, str) else json.dumps(doc)


class CertificateRegistry:
    """Issues AWS-style device certificates and keeps the broker's principal table current."""

    def __init__(
        self, *, moto: MotoServer, device_ca: CertificateAuthority, apply: Apply | None
    ) -> None:
        """`apply` receives the principal table; None when no broker listens."""
        self._moto = moto
        self._ca = device_ca
        self._apply = apply
        self._last_flush_s = 0.0
        self._dirty = threading.Event()
        self._stopped = threading.Event()
        self._worker: threading.Thread | None = None

    def install(self) -> None:
        """Take over certificate issuance and watch every access-relevant call."""
        default_user_config.setdefault("iot", {})["use_valid_cert"] = True
        backend = self._moto.iot
        backend.create_keys_and_certificate = self.create_keys_and_certificate
        backend.create_certificate_from_csr = self.create_certificate_from_csr
        hooks = self._moto.iot_hooks
        for method in _REVOKING:
            hooks.after(method, self._revoked)
        for method in _GRANTING:
            hooks.after(method, self._granted)
        self._worker = threading.Thread(target=self._coalesce, name="sim.aws.certs", daemon=True)
        self._worker.start()
        self.flush()

    def uninstall(self) -> None:
        """Stop the background flusher."""
        self._stopped.set()
        self._dirty.set()
        if self._worker is not None:
            self._worker.join(timeout=5)

    # -- issuance --------------------------------------------------------------------------

    def _store(self, pem: str, active: bool) -> Any:
        backend = self._moto.iot
        cert = FakeCertificate(
            pem, "ACTIVE" if active else "INACTIVE", backend.account_id, backend.region_name
        )
        backend.certificates[cert.certificate_id] = cert
        return cert

    def create_keys_and_certificate(self, set_as_active: bool) -> tuple[Any, dict[str, str]]:
        """CreateKeysAndCertificate: a new key pair and a certificate from the device CA."""
        key = new_key()
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "AWS IoT Certificate")])
        cert = self._ca.sign(key.public_key(), subject)
        pem = cert.public_bytes(serialization.Encoding.PEM).decode()
        key_pair = {
            "PublicKey": key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode(),
            "PrivateKey": key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.TraditionalOpenSSL,
                serialization.NoEncryption(),
            ).decode(),
        }
        return self._store(pem, set_as_active), key_pair

    def create_certificate_from_csr(self, csr: str, set_as_active: bool) -> Any:
        """CreateCertificateFromCsr: the CSR's own public key, signed by the device CA."""
        request = x509.load_pem_x509_csr(csr.encode())
        cert = self._ca.sign(request.public_key(), request.subject)  # type: ignore[arg-type]
        return self._store(cert.public_bytes(serialization.Encoding.PEM).decode(), set_as_active)

    # -- the broker's view -----------------------------------------------------------------

    def principals(self) -> tuple[list[Principal], list[str]]:
        """Every certificate with its things and policy documents, and the active CA PEMs."""
        backend = self._moto.iot
        with self._moto.lock:
            policies: dict[str, list[str]] = defaultdict(list)
            for (target, _name), (_principal, policy) in backend.principal_policies.items():
                policies[target].append(_document(policy))
            things: dict[str, list[str]] = defaultdict(list)
            for principal_arn, thing_name in backend.principal_things:
                things[principal_arn].append(thing_name)
            principals = [
                Principal(
                    certificate_id=cert.certificate_id,
                    certificate_pem=cert.certificate_pem,
                    status=cert.status,
                    things=tuple(things.get(cert.arn, ())),
                    policy_documents=tuple(policies.get(cert.arn, ())),
                )
                for cert in backend.certificates.values()
            ]
            cas = [
                ca.certificate_pem
                for ca in backend.ca_certificates.values()
                if ca.status == "ACTIVE"
            ]
        return principals, cas

    def flush(self) -> None:
        """Compute and apply the principal table now."""
        if self._apply is None:
            return
        started = time.perf_counter()
        principals, cas = self.principals()
        self._apply(principals, [self._ca.cert_pem, *cas])
        self._last_flush_s = time.perf_counter() - started

    def _revoked(self, _call: Call) -> None:
        self.flush()

    def _granted(self, _call: Call) -> None:
        if len(self._moto.iot.certificates) <= _SYNC_CERTIFICATES:
            self.flush()
        else:
            self._dirty.set()

    def _coalesce(self) -> None:
        while not self._stopped.is_set():
            self._dirty.wait()
            if self._stopped.is_set():
                return
            # Flushing is linear in the registry: keep it under a tenth of the time.
            time.sleep(max(_COALESCE_S, 10 * self._last_flush_s))
            self._dirty.clear()
            try:
                self.flush()
            except Exception:
                log.exception("sim.aws.principals_flush_failed")
