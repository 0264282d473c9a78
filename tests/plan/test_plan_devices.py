"""Per-device plans from small hand-made inventories, one branch at a time."""

from __future__ import annotations

import datetime as dt
import functools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.inventory.models import CaCertificate, Certificate, Inventory, Shadow, Thing, ThingGroup
from bridge.mapping.twin import decode_property_name, document_depth, encode_property_name
from bridge.plan import AuthMode, PlanOptions, plan_devices
from bridge.x509 import thumbprints
from bridge_sim.pki import self_signed

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


@functools.cache
def _pem(label: str) -> str:
    return self_signed(label).cert_pem


def cert(label, thing, *, status="ACTIVE", days=365, issuer="aws", ca=None, prints=None):
    pem = _pem(label)
    sha1, sha256 = prints or thumbprints(pem)
    return Certificate(
        certificate_id=f"id-{label}",
        arn=f"arn:aws:iot:us-east-1:1:cert/id-{label}",
        status=status,
        pem=pem,
        issuer=issuer,
        ca_certificate_id=ca,
        sha1_thumbprint=sha1,
        sha256_thumbprint=sha256,
        not_after=NOW + dt.timedelta(days=days),
        things=[thing],
    )


def inventory(things, certs=(), **extra):
    return Inventory(
        generated_at=NOW, region="us-east-1", things=list(things), certificates=list(certs), **extra
    )


def thing(name="dev-1", certs=(), **fields):
    return Thing(name=name, principals=[c.arn for c in certs], **fields)


def only_device(inv, **options):
    [device] = plan_devices(inv, PlanOptions(**options))
    return device


def codes(device):
    return {finding.code for finding in device.findings}


def test_two_active_certificates_give_primary_and_secondary_longest_lived_first():
    short, long_, revoked = (
        cert("short", "dev-1", days=30),
        cert("long", "dev-1", days=700),
        cert("revoked", "dev-1", status="REVOKED", days=900),
    )
    device = only_device(inventory([thing(certs=[short, long_, revoked])], [short, long_, revoked]))
    assert device.auth is not None
    assert device.auth.type == "selfSigned"
    assert (device.auth.primary_thumbprint_sha1, device.auth.primary_thumbprint_sha256) == (
        thumbprints(long_.pem)
    )
    assert device.auth.secondary_thumbprint_sha256 == thumbprints(short.pem)[1]
    assert device.auth.certificate_ids == ["id-long", "id-short"]
    assert not device.needs_human


def test_a_device_without_an_active_certificate_needs_a_human():
    inactive = cert("inactive", "dev-1", status="INACTIVE")
    device = only_device(inventory([thing(certs=[inactive])], [inactive]))
    assert device.auth is None
    assert "NO_ACTIVE_CERTIFICATE" in codes(device)
    assert device.needs_human


def test_a_certificate_missing_from_the_inventory_is_reported():
    device = only_device(inventory([Thing(name="dev-1", principals=["arn:aws:iot:r:1:cert/gone"])]))
    assert {"CERTIFICATE_NOT_IN_INVENTORY", "NO_ACTIVE_CERTIFICATE"} <= codes(device)


def test_the_pem_wins_over_wrong_inventory_thumbprints():
    wrong = cert("wrong", "dev-1", prints=("AA", "BB"))
    device = only_device(inventory([thing(certs=[wrong])], [wrong]))
    assert device.auth.primary_thumbprint_sha256 == thumbprints(wrong.pem)[1]
    assert "THUMBPRINT_MISMATCH" in codes(device)


@pytest.mark.parametrize(
    ("ca_mode", "cas", "expected", "finding"),
    [
        (True, ["ACTIVE"], "certificateAuthority", None),
        (False, ["ACTIVE"], "selfSigned", None),
        (True, [], "selfSigned", "CA_NOT_REGISTERED"),
        (True, ["INACTIVE"], "selfSigned", "CA_NOT_REGISTERED"),
    ],
)
def test_ca_mode_only_for_certificates_of_an_active_registered_ca(ca_mode, cas, expected, finding):
    issued = cert("by-ca", "dev-1", issuer="registered-ca", ca="ca-1")
    ca_certs = [CaCertificate(certificate_id="ca-1", arn="a", status=s, pem="p") for s in cas]
    inv = inventory([thing(certs=[issued])], [issued], ca_certificates=ca_certs)
    device = only_device(inv, ca_mode=ca_mode)
    assert device.auth.type == expected
    assert (finding in codes(device)) if finding else not device.findings
    if expected == "certificateAuthority":
        assert device.auth.ca_certificate_id == "ca-1"
        assert device.auth.primary_thumbprint_sha256 is None


def test_sas_is_an_explicit_choice_and_needs_no_certificate():
    device = only_device(inventory([thing()]), auth=AuthMode.SAS)
    assert device.auth.type == "sas"
    assert "NO_ACTIVE_CERTIFICATE" not in codes(device)


@pytest.mark.parametrize(
    ("name", "valid"),
    [("sensor:01_a-b", True), ("x" * 128, True), ("x" * 129, False), ("has space", False)],
)
def test_device_id_is_the_thing_name_when_iot_hub_accepts_it(name, valid):
    device = only_device(inventory([Thing(name=name)]), auth=AuthMode.SAS)
    assert device.device_id == name
    assert ("INVALID_DEVICE_ID" not in codes(device)) is valid


def test_tags_carry_type_attributes_arn_and_group_paths_with_names_encoded():
    groups = [
        ThingGroup(name="usa", path=["USA"]),
        ThingGroup(name="ny", parent="usa", path=["USA", "New York"], things=["dev-1"]),
    ]
    dev = thing(arn="arn:aws:iot:r:1:thing/dev-1", thing_type="meter", groups=["usa"])
    dev = dev.model_copy(update={"attributes": {"fw.version": "1.2", "site": "A"}})
    device = only_device(inventory([dev], thing_groups=groups), auth=AuthMode.SAS)
    assert device.tags == {
        "aws": {
            "thingName": "dev-1",
            "thingArn": "arn:aws:iot:r:1:thing/dev-1",
            "thingType": "meter",
            "attributes": {"fw%2Eversion": "1.2", "site": "A"},
            "groups": ["USA", "USA/New York"],
        }
    }
    assert "TWIN_PROPERTY_RENAMED" in codes(device)


def test_classic_desired_at_the_top_and_named_shadows_namespaced():
    shadows = [
        Shadow(version=3, desired={"rate": 5}, reported={"rate": 4}, size_bytes=1),
        Shadow(name="config", version=1, desired={"mode": "eco"}, size_bytes=1),
        Shadow(name="ota", version=1, reported={"v": "2"}, size_bytes=1),
    ]
    device = only_device(inventory([thing(shadows=shadows)]), auth=AuthMode.SAS)
    assert device.desired == {"rate": 5, "shadows": {"config": {"mode": "eco"}}}
    assert device.reported == {"rate": 4, "shadows": {"ota": {"v": "2"}}}
    assert device.reported_destination == "modules/aws-bridge: properties.reported"
    assert device.relay.module_id == "aws-bridge"


def test_a_classic_shadows_key_collides_with_named_shadows():
    shadows = [
        Shadow(version=1, desired={"shadows": 1}, size_bytes=1),
        Shadow(name="n", version=1, desired={"a": 1}, size_bytes=1),
    ]
    device = only_device(inventory([thing(shadows=shadows)]), auth=AuthMode.SAS)
    assert "SHADOW_KEY_COLLISION" in codes(device)
    assert device.desired == {"shadows": {"n": {"a": 1}}}


def nested(depth):
    document = {"leaf": 1}
    for _ in range(depth):
        document = {"n": document}
    return document


@pytest.mark.parametrize(("depth", "too_deep"), [(10, False), (11, True)])
def test_twin_depth_limit(depth, too_deep):
    shadows = [Shadow(version=1, desired=nested(depth), size_bytes=1)]
    device = only_device(inventory([thing(shadows=shadows)]), auth=AuthMode.SAS)
    assert document_depth(device.desired) == depth
    assert ("TWIN_TOO_DEEP" in codes(device)) is too_deep


def test_oversized_desired_and_tags_are_reported_with_their_sizes():
    big = "x" * 33_000
    shadows = [Shadow(name="blob", version=1, desired={"b": big}, size_bytes=33_010)]
    dev = thing(shadows=shadows).model_copy(update={"attributes": {"a": "y" * 8_200}})
    device = only_device(inventory([dev]), auth=AuthMode.SAS)
    assert {"TWIN_DESIRED_TOO_LARGE", "TWIN_TAGS_TOO_LARGE"} <= codes(device)
    message = next(f.message for f in device.findings if f.code == "TWIN_DESIRED_TOO_LARGE")
    assert str(device.sizes["desired"]) in message
    assert "blob=33010 B" in message
    assert device.needs_human


def test_plans_are_sorted_whatever_the_inventory_order():
    names = ["b", "c", "a"]
    devices = plan_devices(inventory([Thing(name=n) for n in names]), PlanOptions(auth="sas"))
    assert [d.device_id for d in devices] == ["a", "b", "c"]


@given(st.text())
def test_property_name_encoding_is_reversible_and_iot_hub_safe(name):
    encoded = encode_property_name(name)
    assert decode_property_name(encoded) == name
    assert not set(encoded) & {".", "$", "#", " "}
