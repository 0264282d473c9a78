"""What `iot-bridge plan` produces: frozen pydantic models, versioned like the inventory."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "PLAN_SCHEMA_VERSION",
    "AuthMode",
    "AuthPlan",
    "DevicePlan",
    "Gap",
    "MigrationPlan",
    "PlanFinding",
    "PlanOptions",
    "RelayIdentity",
    "RulePlan",
    "Sizing",
    "Tier",
]

PLAN_SCHEMA_VERSION = "1.0"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Tier(StrEnum):
    """IoT Hub standard tiers; basic tiers lack twins, jobs and cloud-to-device messages."""

    S1 = "S1"
    S2 = "S2"
    S3 = "S3"


class AuthMode(StrEnum):
    """How devices authenticate to IoT Hub after cutover."""

    X509 = "x509"
    SAS = "sas"


class PlanOptions(_Model):
    """The choices an operator can make on the command line."""

    tier: Tier | None = None
    units: int | None = Field(default=None, ge=1)
    auth: AuthMode = AuthMode.X509
    ca_mode: bool = False
    hub_name: str | None = None
    location: str = "westeurope"
    resource_group: str | None = None
    messages_per_device_per_day: int = Field(default=1440, ge=0)


class PlanFinding(_Model):
    """Something about one device or resource that a human should know or fix."""

    severity: Literal["info", "warning", "error"]
    code: str
    message: str


class Sizing(_Model):
    """The IoT Hub tier and units, and why."""

    tier: Tier
    units: int
    devices: int
    messages_per_day: int
    daily_quota: int
    d2c_per_second: float
    partitions: int
    overridden: bool
    explanation: list[str]
    findings: list[PlanFinding] = []


class AuthPlan(_Model):
    """A device's IoT Hub authentication."""

    type: Literal["selfSigned", "certificateAuthority", "sas"]
    primary_thumbprint_sha1: str | None = None
    primary_thumbprint_sha256: str | None = None
    secondary_thumbprint_sha1: str | None = None
    secondary_thumbprint_sha256: str | None = None
    certificate_ids: list[str] = []
    ca_certificate_id: str | None = None


class RelayIdentity(_Model):
    """The module identity the bridge relays as, so the device id seen downstream is unchanged."""

    module_id: str = "aws-bridge"
    auth: Literal["sas"] = "sas"


class DevicePlan(_Model):
    """One thing's Azure identity, twin and everything a human must look at."""

    thing_name: str
    device_id: str
    auth: AuthPlan | None
    relay: RelayIdentity
    tags: dict[str, Any]
    desired: dict[str, Any]
    reported_destination: str = Field(
        description="Where the AWS reported state is mirrored: the relay module twin's reported."
    )
    reported: dict[str, Any]
    sizes: dict[str, int]
    findings: list[PlanFinding] = []

    @property
    def needs_human(self) -> bool:
        """True when the device cannot migrate as planned without someone deciding something."""
        return any(finding.severity == "error" for finding in self.findings)


class RulePlan(_Model):
    """One AWS topic rule: the route it became, or the reasons it did not."""

    rule_name: str
    route_name: str | None
    source: str | None
    condition: str | None
    endpoint_names: list[str]
    enabled: bool
    manual_actions: list[str] = Field(description="Actions whose Azure target is not a route.")
    issues: list[str]
    topic_filter: str | None = Field(default=None, description="The rule's FROM topic filter.")
    device_level: int | None = Field(
        default=None,
        ge=1,
        description="The topic level (1-based, like topic(n)) that names the device, for the "
        "relay; None when the rule analysis could not tell.",
    )


class Gap(_Model):
    """An AWS feature with no faithful Azure equivalent, who it affects and what to do."""

    code: str
    title: str
    detail: str
    recommendation: str
    devices: list[str] = []
    resources: list[str] = []


class MigrationPlan(_Model):
    """Everything the `plan` step decided, for humans (Markdown) and for the bridge (JSON)."""

    schema_version: str = PLAN_SCHEMA_VERSION
    inventory_schema_version: str
    account_id: str | None
    region: str
    options: PlanOptions
    sizing: Sizing
    devices: list[DevicePlan]
    rules: list[RulePlan]
    gaps: list[Gap]
    findings: list[PlanFinding] = []
