"""Per-device plan: IoT Hub identity, authentication, twin tags and desired properties."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from bridge.inventory.models import Certificate, Inventory, Thing
from bridge.mapping.auth import plan_auth
from bridge.mapping.models import DevicePlan, PlanFinding, PlanOptions, RelayIdentity
from bridge.mapping.sections import twin_sections
from bridge.mapping.twin import (
    MAX_DEPTH,
    MAX_DESIRED_BYTES,
    MAX_REPORTED_BYTES,
    MAX_TAGS_BYTES,
    document_depth,
    document_size,
    refused_entry,
)

__all__ = ["DEVICE_ID_PATTERN", "RELAY_MODULE_ID", "plan_devices", "twin_sections"]

# IoT Hub device and module ids: up to 128 ASCII letters, digits and - . % _ * ? ! ( ) , : = @ $ '
DEVICE_ID_PATTERN = re.compile(r"^[A-Za-z0-9\-.%_*?!(),:=@$']{1,128}$")
RELAY_MODULE_ID = "aws-bridge"


@dataclass(frozen=True)
class _Estate:
    """Lookups over the inventory that every device needs."""

    certificates: dict[str, Certificate]
    group_paths: dict[str, str]
    members: dict[str, set[str]] = field(default_factory=dict)
    active_cas: frozenset[str] = frozenset()

    @classmethod
    def of(cls, inventory: Inventory) -> _Estate:
        members: dict[str, set[str]] = {}
        for group in inventory.thing_groups:
            for thing in group.things:
                members.setdefault(thing, set()).add(group.name)
        return cls(
            certificates={cert.arn: cert for cert in inventory.certificates},
            group_paths={
                group.name: "/".join(group.path or [group.name]) for group in inventory.thing_groups
            },
            members=members,
            active_cas=frozenset(
                ca.certificate_id for ca in inventory.ca_certificates if ca.status == "ACTIVE"
            ),
        )


def plan_devices(inventory: Inventory, options: PlanOptions) -> list[DevicePlan]:
    """One plan per thing, sorted by thing name so plans diff well."""
    estate = _Estate.of(inventory)
    return [
        _plan_device(thing, estate, options)
        for thing in sorted(inventory.things, key=lambda t: t.name)
    ]


def _plan_device(thing: Thing, estate: _Estate, options: PlanOptions) -> DevicePlan:
    findings: list[PlanFinding] = []
    if not DEVICE_ID_PATTERN.fullmatch(thing.name):
        findings.append(
            _finding(
                "error",
                "INVALID_DEVICE_ID",
                f"thing name {thing.name!r} is not a valid IoT Hub device id (up to 128 ASCII "
                "letters, digits and - . % _ * ? ! ( ) , : = @ $ ')",
            )
        )
    certificates = [estate.certificates[p] for p in thing.principals if p in estate.certificates]
    findings.extend(
        _finding(
            "warning",
            "CERTIFICATE_NOT_IN_INVENTORY",
            f"attached certificate {principal} is not in the inventory",
        )
        for principal in sorted(thing.principals)
        if ":cert/" in principal and principal not in estate.certificates
    )
    auth = plan_auth(certificates, estate.active_cas, options, findings)
    groups = set(thing.groups) | estate.members.get(thing.name, set())
    tags, desired, reported = twin_sections(thing, groups, estate.group_paths, findings)
    sizes = {
        "tags": document_size(tags),
        "desired": document_size(desired),
        "reported": document_size(reported),
    }
    findings.extend(_limit_findings(thing, tags, desired, reported, sizes))
    return DevicePlan(
        thing_name=thing.name,
        device_id=thing.name,
        auth=auth,
        relay=RelayIdentity(module_id=RELAY_MODULE_ID),
        tags=tags,
        desired=desired,
        reported_destination=f"modules/{RELAY_MODULE_ID}: properties.reported",
        reported=reported,
        sizes=sizes,
        findings=findings,
    )


def _limit_findings(
    thing: Thing,
    tags: dict[str, Any],
    desired: dict[str, Any],
    reported: dict[str, Any],
    sizes: dict[str, int],
) -> list[PlanFinding]:
    findings: list[PlanFinding] = []
    limits = {"tags": MAX_TAGS_BYTES, "desired": MAX_DESIRED_BYTES, "reported": MAX_REPORTED_BYTES}
    named = ", ".join(
        f"{shadow.name}={shadow.size_bytes} B" for shadow in thing.shadows if shadow.name
    )
    for section, limit in limits.items():
        if sizes[section] > limit:
            detail = f" (named shadows: {named})" if named and section != "tags" else ""
            findings.append(
                _finding(
                    "error",
                    f"TWIN_{section.upper()}_TOO_LARGE",
                    f"twin {section} would be {sizes[section]} bytes, over IoT Hub's "
                    f"{limit} bytes{detail}",
                )
            )
    for section, document in (("tags", tags), ("desired", desired), ("reported", reported)):
        depth = document_depth(document)
        if depth > MAX_DEPTH:
            findings.append(
                _finding(
                    "error",
                    "TWIN_TOO_DEEP",
                    f"twin {section} nests {depth} levels deep, over IoT Hub's {MAX_DEPTH}",
                )
            )
        refused = refused_entry(document)
        if refused:
            findings.append(_finding("error", "TWIN_ENTRY_REFUSED", f"twin {section}: {refused}"))
    return findings


def _finding(severity: str, code: str, message: str) -> PlanFinding:
    return PlanFinding.model_validate({"severity": severity, "code": code, "message": message})
