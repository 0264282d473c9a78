"""How a thing will authenticate on Azure, read live from its AWS certificates.

The daemon creates devices that appear after the plan was made (or runs without a plan),
so it derives the auth the same way `iot-bridge plan` does: thumbprints of the DER of the
thing's active certificates, or CA mode when asked and the CA is registered. Only public
certificates are read; AWS never holds the device's private key and neither does the bridge.
"""

from __future__ import annotations

from bridge.aws.certificates import certificate_from_description
from bridge.aws.clients import AwsApi
from bridge.errors import Gone
from bridge.inventory.models import Certificate
from bridge.mapping.auth import plan_auth
from bridge.mapping.models import AuthPlan, PlanFinding, PlanOptions

__all__ = ["CertificateAuth"]


class CertificateAuth:
    """`AuthLookup` over the AWS control plane: the thing's certificates -> `AuthPlan`."""

    def __init__(self, iot: AwsApi, options: PlanOptions | None = None) -> None:
        self._iot = iot
        self._options = options or PlanOptions()

    async def __call__(self, thing_name: str) -> AuthPlan | None:
        try:
            principals = [
                arn
                async for arn in self._iot.pages(
                    "list_thing_principals", "principals", thingName=thing_name
                )
            ]
        except Gone:
            return None
        certificates: list[Certificate] = []
        active_cas: set[str] = set()
        for arn in principals:
            if ":cert/" not in arn:
                continue
            try:
                answer = await self._iot.call(
                    "describe_certificate", certificateId=arn.rsplit("/", 1)[1]
                )
            except Gone:
                continue
            certificate = certificate_from_description(answer["certificateDescription"])
            certificates.append(certificate)
            if self._options.ca_mode and certificate.ca_certificate_id:
                active_cas |= await self._active_ca(certificate.ca_certificate_id)
        findings: list[PlanFinding] = []
        return plan_auth(certificates, frozenset(active_cas), self._options, findings)

    async def _active_ca(self, ca_id: str) -> set[str]:
        try:
            answer = await self._iot.call("describe_ca_certificate", certificateId=ca_id)
        except Gone:
            return set()
        status = answer["certificateDescription"]["status"]
        return {ca_id} if status == "ACTIVE" else set()
