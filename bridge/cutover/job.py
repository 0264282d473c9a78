"""The cutover job document: what one AWS IoT Job tells a device about its new home.

One wave is one AWS IoT Job, and one job has one document, so the document cannot name
each device. It does not need to: the IoT Hub device id IS the thing name (DESIGN.md,
Identity), so `deviceId` is the reserved value `$thingName` ("use your own thing name")
for a wave, or a literal id for a job sent to one device. This avoids depending on job
templates' `${aws:iot:parameter:...}` substitution, which a single-target document does
not need and which older device SDKs do not see. The JSON Schema in
`schemas/cutover-job.schema.json` is generated from these models.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "OPERATION",
    "SCHEMA_PATH",
    "SCHEMA_VERSION",
    "THING_NAME",
    "Auth",
    "Firmware",
    "Hub",
    "JobDocument",
    "job_schema",
]

OPERATION: Final = "migrate-to-azure-iot-hub"
SCHEMA_VERSION: Final = "1"
THING_NAME = "$thingName"
"""`deviceId` value meaning: the device's IoT Hub id is its own AWS thing name."""
SCHEMA_PATH = Path(__file__).resolve().parents[2] / "schemas" / "cutover-job.schema.json"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Hub(_Model):
    """Where the device connects on Azure."""

    host_name: str = Field(
        alias="hostName", description="The hub's host name (<hub>.azure-devices.net)."
    )
    gateway_host_name: str | None = Field(
        default=None,
        alias="gatewayHostName",
        description="Address to dial when it differs from hostName (emulator, gateways).",
    )


class Auth(_Model):
    """How the device proves itself to IoT Hub."""

    mode: Literal["x509-thumbprint", "sas"] = Field(
        description="x509-thumbprint: keep the AWS certificate and key (the hub knows its "
        "SHA-256 thumbprint); sas: a symmetric key provisioned out of band."
    )
    thumbprint: str | None = Field(
        default=None,
        pattern="^[0-9A-Fa-f]{64}$",
        description="The SHA-256 thumbprint the hub expects, when the job names one device.",
    )


class Firmware(_Model):
    """New device code to install before connecting to Azure."""

    url: str
    size: int = Field(ge=0)
    sha256: str = Field(pattern="^[0-9a-f]{64}$")


class JobDocument(_Model):
    """The document of a cutover job (version 1)."""

    operation: Literal["migrate-to-azure-iot-hub"] = OPERATION
    version: Literal["1"] = SCHEMA_VERSION
    hub: Hub
    device_id: str = Field(
        default=THING_NAME,
        alias="deviceId",
        min_length=1,
        max_length=128,
        description=f"The IoT Hub device id; {THING_NAME!r} means the device's own thing name.",
    )
    auth: Auth = Auth(mode="x509-thumbprint")
    trust_anchors: list[str] = Field(
        alias="trustAnchors",
        min_length=1,
        description="CAs to trust for the hub: PEM certificates, or the names of well-known "
        "roots (DigiCert Global Root G2, Microsoft RSA Root CA 2017).",
    )
    fallback_deadline_seconds: int = Field(
        alias="fallbackDeadlineSeconds",
        ge=1,
        description="Seconds the device keeps trying Azure before falling back to AWS: it "
        "then marks the execution FAILED with the reason and stays on AWS. With the wave's "
        "retries (jobExecutionsRetryConfig), AWS offers the job again as a new execution "
        "(next executionNumber), and the device tries once more from the start; only the "
        "last attempt's ending decides the device. Success is never the job status: the "
        "device must connect to the hub as itself and report `migration` "
        "(status migrated, this jobId) in its twin's reported properties.",
    )
    firmware: Firmware | None = None

    def device_for(self, thing_name: str) -> str:
        """The IoT Hub device id this document gives the thing `thing_name`."""
        return thing_name if self.device_id == THING_NAME else self.device_id

    def wire(self) -> dict[str, object]:
        """The document as it goes into CreateJob (aliases, no nulls)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


def job_schema() -> str:
    """The schema as the repository publishes it (stable key order, trailing newline)."""
    schema = JobDocument.model_json_schema(by_alias=True)
    schema["$id"] = f"https://iot-bridge.dev/schemas/cutover-job/{SCHEMA_VERSION}"
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    SCHEMA_PATH.write_text(job_schema())
