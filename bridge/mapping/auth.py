"""A device's IoT Hub authentication from its AWS certificates and the chosen mode."""

from __future__ import annotations

from bridge.inventory.models import Certificate
from bridge.mapping.models import AuthMode, AuthPlan, PlanFinding, PlanOptions
from bridge.x509 import thumbprints

__all__ = ["plan_auth"]


def plan_auth(
    certificates: list[Certificate],
    active_cas: frozenset[str],
    options: PlanOptions,
    findings: list[PlanFinding],
) -> AuthPlan | None:
    """SAS, or X.509 from the active certificates; None (and a finding) when X.509 cannot be."""
    if options.auth is AuthMode.SAS:
        findings.append(
            _finding(
                "info",
                "SAS_AUTH",
                "SAS chosen: IoT Hub generates the keys, and the device needs them delivered "
                "(job document or firmware) before cutover",
            )
        )
        return AuthPlan(type="sas")
    active = sorted(
        (cert for cert in certificates if cert.status == "ACTIVE"),
        key=lambda cert: (-(cert.not_after.timestamp() if cert.not_after else 0), cert.arn),
    )
    if not active:
        statuses = ", ".join(sorted(f"{c.certificate_id[:12]}={c.status}" for c in certificates))
        findings.append(
            _finding(
                "error",
                "NO_ACTIVE_CERTIFICATE",
                f"no ACTIVE certificate attached ({statuses or 'none attached'}); the device "
                "cannot be created with X.509 authentication",
            )
        )
        return None
    if len(active) > 2:
        findings.append(
            _finding(
                "warning",
                "EXTRA_CERTIFICATES",
                f"{len(active)} active certificates; IoT Hub keeps two thumbprints, the "
                "longest-lived two are used",
            )
        )
    primary = active[0]
    if options.ca_mode and primary.issuer == "registered-ca":
        ca_auth = _ca_auth(active, active_cas, findings)
        if ca_auth is not None:
            return ca_auth
    primary_prints = _thumbprints(primary, findings)
    secondary_prints = _thumbprints(active[1], findings) if len(active) > 1 else (None, None)
    return AuthPlan(
        type="selfSigned",
        primary_thumbprint_sha1=primary_prints[0],
        primary_thumbprint_sha256=primary_prints[1],
        secondary_thumbprint_sha1=secondary_prints[0],
        secondary_thumbprint_sha256=secondary_prints[1],
        certificate_ids=[cert.certificate_id for cert in active[:2]],
    )


def _ca_auth(
    active: list[Certificate], active_cas: frozenset[str], findings: list[PlanFinding]
) -> AuthPlan | None:
    """CA mode for a device whose primary certificate a registered CA issued; None (and a
    finding) when thumbprints must do instead."""
    ca_id = active[0].ca_certificate_id
    if ca_id not in active_cas:
        findings.append(
            _finding(
                "warning",
                "CA_NOT_REGISTERED",
                f"issuing CA {ca_id} is not an active CA in the inventory; "
                "falling back to selfSigned thumbprints",
            )
        )
        return None
    # CA mode authenticates what that CA issued and nothing else: another active
    # certificate (mid-rotation from AWS-issued ones, say) would stop working on Azure,
    # while thumbprints keep two certificates of any origin.
    foreign = [
        cert.certificate_id[:12]
        for cert in active
        if cert.issuer != "registered-ca" or cert.ca_certificate_id != ca_id
    ]
    if foreign:
        findings.append(
            _finding(
                "warning",
                "CA_MODE_MIXED_CERTIFICATES",
                f"active certificates {', '.join(foreign)} were not issued by CA {ca_id} "
                "and would not authenticate in CA mode; falling back to selfSigned "
                "thumbprints",
            )
        )
        return None
    return AuthPlan(
        type="certificateAuthority",
        certificate_ids=[cert.certificate_id for cert in active[:2]],
        ca_certificate_id=ca_id,
    )


def _thumbprints(cert: Certificate, findings: list[PlanFinding]) -> tuple[str, str]:
    """Thumbprints of the DER as IoT Hub computes them; the PEM is the source of truth."""
    try:
        computed = thumbprints(cert.pem)
    except ValueError:
        findings.append(
            _finding(
                "warning",
                "CERTIFICATE_UNREADABLE",
                f"certificate {cert.certificate_id} PEM does not parse; using the inventory's "
                "thumbprints",
            )
        )
        return cert.sha1_thumbprint, cert.sha256_thumbprint
    if computed != (cert.sha1_thumbprint, cert.sha256_thumbprint):
        findings.append(
            _finding(
                "warning",
                "THUMBPRINT_MISMATCH",
                f"certificate {cert.certificate_id}: the inventory's thumbprints differ from "
                "the PEM's; the PEM's are used",
            )
        )
    return computed


def _finding(severity: str, code: str, message: str) -> PlanFinding:
    return PlanFinding.model_validate({"severity": severity, "code": code, "message": message})
