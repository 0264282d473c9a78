"""Inventory models. The JSON Schema in `schemas/inventory.schema.json` is generated from these.

Bump SCHEMA_VERSION on any change a reader could notice; readers refuse a major version
they do not know.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "SCHEMA_VERSION",
    "CaCertificate",
    "Certificate",
    "Finding",
    "Inventory",
    "Job",
    "Policy",
    "Shadow",
    "Thing",
    "ThingGroup",
    "ThingType",
    "TopicRule",
]

SCHEMA_VERSION = "1.1"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Finding(_Model):
    """Something discovery could not read, or that will not carry over as is."""

    severity: Literal["info", "warning", "error"]
    code: str = Field(description="Stable machine-readable code, e.g. AccessDenied.")
    message: str
    resource: str | None = Field(default=None, description="ARN or name of the resource.")


class ThingType(_Model):
    """A thing type, deprecated or not."""

    name: str
    arn: str | None = None
    description: str | None = None
    searchable_attributes: list[str] = []
    deprecated: bool = False
    deprecation_date: dt.datetime | None = None


class ThingGroup(_Model):
    """A static thing group with its place in the hierarchy and its direct members."""

    name: str
    arn: str | None = None
    group_id: str | None = None
    parent: str | None = None
    path: list[str] = Field(
        default_factory=list, description="Root-to-this group names, e.g. ['USA', 'New York']."
    )
    description: str | None = None
    attributes: dict[str, str] = {}
    version: int | None = None
    dynamic: bool = False
    query_string: str | None = None
    things: list[str] = Field(default_factory=list, description="Direct members, by name.")


class Shadow(_Model):
    """A classic (name None) or named shadow document."""

    name: str | None = None
    version: int
    desired: dict[str, Any] | None = None
    reported: dict[str, Any] | None = None
    size_bytes: int = Field(description="Size of the state (desired + reported) as JSON.")


class Thing(_Model):
    """A registered thing with its shadows and principals."""

    name: str
    arn: str | None = None
    thing_id: str | None = None
    thing_type: str | None = None
    attributes: dict[str, str] = {}
    version: int | None = None
    groups: list[str] = Field(default_factory=list, description="Direct group memberships.")
    principals: list[str] = Field(default_factory=list, description="Attached certificate ARNs.")
    shadows: list[Shadow] = []


class Certificate(_Model):
    """A device certificate: AWS-issued, or registered with or without a CA."""

    certificate_id: str
    arn: str
    status: str
    pem: str
    ca_certificate_id: str | None = None
    issuer: Literal["aws", "registered-ca", "registered-without-ca"] = "aws"
    sha1_thumbprint: str = Field(description="SHA-1 of the DER, upper-case hex (IoT Hub form).")
    sha256_thumbprint: str = Field(description="SHA-256 of the DER, upper-case hex.")
    subject: str | None = None
    not_after: dt.datetime | None = None
    things: list[str] = []
    policies: list[str] = []


class CaCertificate(_Model):
    """A CA certificate registered with AWS IoT."""

    certificate_id: str
    arn: str
    status: str
    pem: str
    auto_registration: str | None = None
    subject: str | None = None


class Policy(_Model):
    """An IoT policy and its default version's document."""

    name: str
    arn: str | None = None
    default_version_id: str | None = None
    document: dict[str, Any] | str
    targets: list[str] = []


class TopicRule(_Model):
    """A topic rule with its SQL and actions, as AWS returns them."""

    name: str
    arn: str | None = None
    sql: str
    sql_version: str | None = None
    description: str | None = None
    disabled: bool = False
    # Each action is {type: {settings}}, as AWS returns it; anything else is not AWS's.
    actions: list[dict[str, dict[str, Any]]] = []
    error_action: dict[str, dict[str, Any]] | None = None


class Job(_Model):
    """A job, for the record: jobs do not migrate, but running ones matter at cutover."""

    job_id: str
    arn: str | None = None
    status: str
    target_selection: str | None = None
    targets: list[str] = []
    document: str | None = None
    description: str | None = None


class Inventory(_Model):
    """Everything discovered in one AWS account and region."""

    schema_version: str = SCHEMA_VERSION
    generated_at: dt.datetime
    account_id: str | None = None
    region: str
    data_endpoint: str | None = None
    fleet_indexing: bool = False
    # OFF, REGISTRY or REGISTRY_AND_SHADOW; None when the configuration could not be read.
    thing_indexing_mode: str | None = None
    # Event type -> whether AWS publishes it (UpdateEventConfigurations); None: not read.
    event_configurations: dict[str, bool] | None = None
    thing_types: list[ThingType] = []
    thing_groups: list[ThingGroup] = []
    things: list[Thing] = []
    certificates: list[Certificate] = []
    ca_certificates: list[CaCertificate] = []
    policies: list[Policy] = []
    rules: list[TopicRule] = []
    jobs: list[Job] = []
    findings: list[Finding] = []

    def __repr__(self) -> str:
        # Counts, not contents: Python 3.11's asyncio.run formats the repr of its main
        # task, result included, as it ends (signal.getsignal -> Enum's error message), and
        # the full repr of a 100,000-thing inventory is hundreds of MB.
        counts = ", ".join(
            f"{name}={len(value)}" for name, value in self if isinstance(value, list)
        )
        return f"Inventory(region={self.region!r}, generated_at={self.generated_at!r}, {counts})"
