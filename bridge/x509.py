"""Certificate facts the bridge needs: AWS's certificate id and IoT Hub's thumbprints."""

from __future__ import annotations

import datetime as dt
import hashlib

from cryptography import x509
from cryptography.hazmat.primitives import serialization

__all__ = ["der_sha256", "describe", "thumbprints"]


def _der(cert_pem: str) -> bytes:
    return x509.load_pem_x509_certificate(cert_pem.encode()).public_bytes(
        serialization.Encoding.DER
    )


def der_sha256(cert_pem: str) -> str:
    """SHA-256 of the certificate's DER, lower-case hex: AWS IoT's certificate id."""
    return hashlib.sha256(_der(cert_pem)).hexdigest()


def thumbprints(cert_pem: str) -> tuple[str, str]:
    """(SHA-1, SHA-256) thumbprints of the DER, upper-case hex, as IoT Hub stores them."""
    der = _der(cert_pem)
    sha1 = hashlib.sha1(der).hexdigest().upper()  # noqa: S324 - IoT Hub's own format
    return sha1, hashlib.sha256(der).hexdigest().upper()


def describe(cert_pem: str) -> tuple[str, str, dt.datetime]:
    """(subject, issuer, not-after) of a PEM certificate, names in RFC 4514 form."""
    cert = x509.load_pem_x509_certificate(cert_pem.encode())
    return cert.subject.rfc4514_string(), cert.issuer.rfc4514_string(), cert.not_valid_after_utc
