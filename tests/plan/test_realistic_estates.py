"""Plans of things AWS accepts but IoT Hub twins cannot hold as they are.

A shadow may hold up to 8 KB, so one string value can be over IoT Hub's 4 KB for a
string, and one property name (percent-encoded, up to three times longer) over its 1 KB
for a name; AWS also takes an empty name, which IoT Hub does not. IoT Hub refuses such a
twin whole; the plan must say so before the run does.
"""

from __future__ import annotations

import pytest

from bridge.inventory.models import CaCertificate, Inventory, Shadow, Thing
from bridge.plan import PlanOptions, build_plan, plan_devices
from bridge.x509 import thumbprints
from tests.plan.test_plan_devices import NOW, cert


def _plan_one(shadow: Shadow, **fields):
    thing = Thing(name="dev-1", shadows=[shadow], **fields)
    inventory = Inventory(generated_at=NOW, region="us-east-1", things=[thing])
    [device] = plan_devices(inventory, PlanOptions(auth="sas"))
    return inventory, device


@pytest.mark.parametrize(
    ("section", "document", "said"),
    [
        ("desired", {"cfg": {"blob": "x" * 5000}}, "the value of 'cfg/blob' is 5000 bytes"),
        ("reported", {"log": ["ok", "é" * 2100]}, "the value of 'log/1' is 4200 bytes"),
        ("desired", {"." * 400: 1}, "property name '%2E%2E%2E"),
        ("reported", {"ok": {"": 1}}, "an empty property name at 'ok/'"),
    ],
)
def test_a_string_over_4_kb_or_a_name_empty_or_over_1_kb_needs_a_human(section, document, said):
    shadow = Shadow(version=1, size_bytes=5100, **{section: document})
    inventory, device = _plan_one(shadow)
    [finding] = [f for f in device.findings if f.code == "TWIN_ENTRY_REFUSED"]
    assert finding.severity == "error"
    assert finding.message.startswith(f"twin {section}: ")
    assert said in finding.message
    assert device.needs_human
    gaps = build_plan(inventory, PlanOptions(auth="sas")).plan.gaps
    assert [g.devices for g in gaps if g.code == "TWIN_ENTRY_REFUSED"] == [["dev-1"]]


def test_values_and_names_at_the_limits_fit():
    shadow = Shadow(version=1, desired={"a" * 1024: "v" * 4096}, size_bytes=5200)
    _, device = _plan_one(shadow)
    assert not device.needs_human
    assert "TWIN_ENTRY_REFUSED" not in {f.code for f in device.findings}


def test_attributes_over_the_tags_limit_are_reported_as_attributes_not_shadows():
    # A typed thing may hold 50 attributes of 800 characters: about 40 KB of tags.
    attributes = {f"k{i:02d}": "v" * 800 for i in range(50)}
    thing = Thing(name="dev-1", thing_type="meter", attributes=attributes)
    inventory = Inventory(generated_at=NOW, region="us-east-1", things=[thing])
    [gap] = [
        g
        for g in build_plan(inventory, PlanOptions(auth="sas")).plan.gaps
        if g.code == "TWIN_TAGS_TOO_LARGE"
    ]
    assert gap.devices == ["dev-1"]
    assert "attributes" in gap.title
    assert "shadow" not in f"{gap.title} {gap.recommendation}"


@pytest.mark.parametrize(
    ("second", "expected"),
    [
        ({"issuer": "aws"}, "selfSigned"),  # mid-rotation from AWS-issued certificates
        ({"issuer": "registered-ca", "ca": "ca-2"}, "selfSigned"),  # another CA
        ({"issuer": "registered-ca", "ca": "ca-1"}, "certificateAuthority"),
    ],
)
def test_ca_mode_only_when_that_ca_issued_every_active_certificate(second, expected):
    issued = cert("by-ca", "dev-1", issuer="registered-ca", ca="ca-1", days=700)
    other = cert("other", "dev-1", days=300, **second)
    ca_certs = [
        CaCertificate(certificate_id=ca, arn=ca, status="ACTIVE", pem="p")
        for ca in ("ca-1", "ca-2")
    ]
    things = [Thing(name="dev-1", principals=[issued.arn, other.arn])]
    inv = Inventory(
        generated_at=NOW,
        region="us-east-1",
        things=things,
        certificates=[issued, other],
        ca_certificates=ca_certs,
    )
    [device] = plan_devices(inv, PlanOptions(ca_mode=True))
    assert device.auth.type == expected
    if expected == "selfSigned":
        # Both certificates keep working on Azure, and the plan says why CA mode is not used.
        assert {device.auth.primary_thumbprint_sha256, device.auth.secondary_thumbprint_sha256} == {
            thumbprints(issued.pem)[1],
            thumbprints(other.pem)[1],
        }
        [finding] = [f for f in device.findings if f.code == "CA_MODE_MIXED_CERTIFICATES"]
        assert other.certificate_id[:12] in finding.message
