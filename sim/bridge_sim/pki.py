"""A small certificate authority for the local stand-ins.

Keys are EC P-256: a stand-in issues thousands of certificates for a simulated fleet and
RSA key generation would dominate set-up time. Every client the project targets
(awscrt, OpenSSL, Python's ssl, pyOpenSSL) accepts them.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from bridge.x509 import der_sha256, thumbprints  # re-exported for the stand-ins

if TYPE_CHECKING:
    from pathlib import Path

    from cryptography.hazmat.primitives.asymmetric.types import (
        CertificateIssuerPublicKeyTypes,
        PrivateKeyTypes,
    )

__all__ = [
    "CertificateAuthority",
    "IssuedCertificate",
    "der_sha256",
    "new_key",
    "self_signed",
    "thumbprints",
]

_VALIDITY = dt.timedelta(days=3650)


def new_key() -> ec.EllipticCurvePrivateKey:
    """Generate a private key for a stand-in certificate."""
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: PrivateKeyTypes) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def _name(common_name: str, organization: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    return x509.Name(attrs)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)


@dataclass(frozen=True)
class IssuedCertificate:
    """A certificate and its private key, both PEM."""

    cert_pem: str
    key_pem: str

    def write(self, directory: Path, stem: str) -> tuple[Path, Path]:
        """Write `<stem>.crt` and `<stem>.key` (mode 0600) and return their paths."""
        directory.mkdir(parents=True, exist_ok=True)
        cert_path, key_path = directory / f"{stem}.crt", directory / f"{stem}.key"
        cert_path.write_text(self.cert_pem)
        key_path.touch(mode=0o600)
        key_path.write_text(self.key_pem)
        return cert_path, key_path


class CertificateAuthority:
    """A self-signed root that issues server and client certificates."""

    def __init__(self, key: ec.EllipticCurvePrivateKey, cert: x509.Certificate) -> None:
        self.key = key
        self.cert = cert

    @classmethod
    def create(
        cls, common_name: str, organization: str = "iot-bridge stand-in"
    ) -> CertificateAuthority:
        """Create a new root CA."""
        key = new_key()
        name = _name(common_name, organization)
        ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(_now())
            .not_valid_after(_now() + _VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(ski, critical=False)
            .sign(key, hashes.SHA256())
        )
        return cls(key, cert)

    @property
    def cert_pem(self) -> str:
        return self.cert.public_bytes(serialization.Encoding.PEM).decode()

    def write(self, directory: Path, stem: str = "ca") -> tuple[Path, Path]:
        """Write the CA certificate and key; return their paths."""
        return IssuedCertificate(self.cert_pem, _key_pem(self.key)).write(directory, stem)

    def sign(
        self,
        public_key: CertificateIssuerPublicKeyTypes,
        subject: x509.Name,
        *,
        server_names: tuple[str, ...] = (),
        client: bool = True,
    ) -> x509.Certificate:
        """Sign `public_key` into a leaf certificate for `subject`."""
        usages = [ExtendedKeyUsageOID.CLIENT_AUTH] if client else []
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.cert.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(_now())
            .not_valid_after(_now() + _VALIDITY)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
        )
        if server_names:
            sans: list[x509.GeneralName] = []
            for host in server_names:
                try:
                    sans.append(x509.IPAddress(ipaddress.ip_address(host)))
                except ValueError:
                    sans.append(x509.DNSName(host))
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
            usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
        builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        return builder.sign(self.key, hashes.SHA256())

    def issue(
        self, common_name: str, *, server_names: tuple[str, ...] = (), client: bool = True
    ) -> IssuedCertificate:
        """Issue a new key and certificate for `common_name`."""
        key = new_key()
        cert = self.sign(
            key.public_key(), _name(common_name), server_names=server_names, client=client
        )
        return IssuedCertificate(
            cert.public_bytes(serialization.Encoding.PEM).decode(), _key_pem(key)
        )

    def issue_server(self, *names: str) -> IssuedCertificate:
        """Issue a TLS server certificate valid for the given host names and IP addresses."""
        return self.issue(names[0], server_names=names, client=False)


def self_signed(common_name: str) -> IssuedCertificate:
    """A self-signed client certificate, as a device maker might register without a CA."""
    ca = CertificateAuthority.create(common_name)
    return IssuedCertificate(ca.cert_pem, _key_pem(ca.key))
