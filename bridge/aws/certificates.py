"""A certificate as the inventory records it, from AWS's DescribeCertificate answer."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bridge.inventory.models import Certificate
from bridge.x509 import describe, thumbprints

__all__ = ["certificate_from_description"]

_AWS_ISSUERS = ("Amazon Web Services", "AWS IoT device CA")


def certificate_from_description(desc: Mapping[str, Any]) -> Certificate:
    """The inventory's `Certificate` for a DescribeCertificate `certificateDescription`."""
    pem = desc["certificatePem"]
    subject, issuer, not_after = describe(pem)
    sha1, sha256 = thumbprints(pem)
    if desc.get("caCertificateId"):
        kind = "registered-ca"
    elif any(marker in issuer for marker in _AWS_ISSUERS):
        kind = "aws"
    else:
        kind = "registered-without-ca"
    return Certificate(
        certificate_id=desc["certificateId"],
        arn=desc["certificateArn"],
        status=desc["status"],
        pem=pem,
        ca_certificate_id=desc.get("caCertificateId"),
        issuer=kind,
        sha1_thumbprint=sha1,
        sha256_thumbprint=sha256,
        subject=subject,
        not_after=not_after,
    )
