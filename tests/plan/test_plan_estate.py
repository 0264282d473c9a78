"""The plan of a realistic estate, discovered from the stand-in: exact thumbprints, routes, gaps."""

from __future__ import annotations

import json

import pytest
from pydantic import SecretStr

from bridge.config import CloudSettings
from bridge.discover import DiscoveryOptions, discover
from bridge.plan import PlanOptions, build_plan, write_plan
from bridge.x509 import thumbprints
from bridge_sim.aws.control_plane import control_plane
from bridge_sim.estate import EstateSpec, build_estate


@pytest.fixture(scope="module")
def discovered(tmp_path_factory):
    """One estate and its inventory for every test here: the stand-in takes seconds to start."""
    import asyncio  # noqa: PLC0415 - a module-scoped fixture runs its own loop

    tmp_path = tmp_path_factory.mktemp("estate")
    with control_plane("us-east-1") as plane:
        estate = build_estate(plane.moto, plane.shadows, EstateSpec(things=40))
        cloud = CloudSettings(
            AWS_REGION="us-east-1",
            AWS_ENDPOINT_URL=plane.moto.endpoint_url,
            AWS_ACCESS_KEY_ID=SecretStr("t"),
            AWS_SECRET_ACCESS_KEY=SecretStr("t"),
        )
        inventory = asyncio.run(
            discover(cloud, tmp_path / "inv.json", DiscoveryOptions(rate_scale=0))
        )
    return estate, inventory


def test_every_thing_gets_the_thumbprints_of_its_own_certificate(discovered):
    estate, inventory = discovered
    plan = build_plan(inventory, PlanOptions()).plan
    assert [d.device_id for d in plan.devices] == sorted(estate.devices)
    for device in plan.devices:
        sha1, sha256 = thumbprints(estate.devices[device.thing_name].certificate_pem)
        assert device.auth is not None
        assert device.auth.type == "selfSigned"
        assert (device.auth.primary_thumbprint_sha1, device.auth.primary_thumbprint_sha256) == (
            sha1,
            sha256,
        )
        assert device.relay.module_id == "aws-bridge"


def test_ca_mode_uses_the_estate_ca_for_the_devices_it_issued(discovered):
    _, inventory = discovered
    plan = build_plan(inventory, PlanOptions(ca_mode=True)).plan
    by_type = {d.thing_name: d.auth.type for d in plan.devices if d.auth}
    ca_issued = {c.things[0] for c in inventory.certificates if c.issuer == "registered-ca"}
    assert ca_issued, "the estate builder registers some devices under its own CA"
    assert {name for name, kind in by_type.items() if kind == "certificateAuthority"} == ca_issued
    [registration] = [f for f in plan.findings if f.code == "CA_REGISTRATION"]
    ca_ids = {c.certificate_id for c in inventory.ca_certificates}
    assert any(ca_id in registration.message for ca_id in ca_ids)


def test_group_paths_and_rules_and_gaps_come_through(discovered, tmp_path):
    estate, inventory = discovered
    result = build_plan(inventory, PlanOptions(hub_name="hub-estate"))
    plan = result.plan
    device = plan.devices[0]
    site_path = estate.groups[estate.devices[device.thing_name].site]
    assert "/".join(site_path) in device.tags["aws"]["groups"]
    # One Timestream rule per sensor type: a route to an Event Hub each, ADX by hand.
    assert all(rule.route_name for rule in plan.rules), [r.issues for r in plan.rules]
    assert len(result.tfvars["event_hubs"]) == len(plan.rules) > 0
    codes = {gap.code for gap in plan.gaps}
    assert {"IOT_POLICY", "DEPRECATED_THING_TYPE", "RULE_PARTIAL"} <= codes
    paths = write_plan(result, tmp_path)
    written = json.loads(paths[1].read_text())
    assert written["schema_version"] == "1.0"
    assert len(written["devices"]) == len(estate.devices)
