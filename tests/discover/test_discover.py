"""Discovery against the AWS stand-in's control plane (moto in server mode) through aiobotocore."""

from pathlib import Path

import pytest
from moto.core.exceptions import JsonRESTError
from moto.iot.exceptions import ResourceNotFoundException

from bridge.discover import DiscoveryOptions, discover
from bridge.inventory.models import Inventory
from bridge_sim.estate import EstateSpec, build_estate
from bridge_sim.pki import thumbprints
from tests.discover.estates import REGION, build_small_estate, cloud_for
from tests.standins import ControlPlane, control_plane


async def test_inventory_holds_every_field_of_the_estate(server, tmp_path: Path) -> None:
    pems = build_small_estate(server)
    output = tmp_path / "inventory.json"
    inventory = await discover(cloud_for(server), output, DiscoveryOptions(rate_scale=0))
    assert Inventory.model_validate_json(output.read_text()) == inventory
    assert inventory.schema_version == "1.1"
    assert inventory.event_configurations is not None
    assert inventory.event_configurations["THING"] is True  # the stand-in's operator enabled it
    assert inventory.thing_indexing_mode == "OFF"
    assert inventory.data_endpoint
    assert inventory.data_endpoint.endswith(f"-ats.iot.{REGION}.amazonaws.com")
    assert {t.name: t.deprecated for t in inventory.thing_types} == {
        "temp-sensor": False,
        "legacy": True,
    }
    groups = {g.name: g for g in inventory.thing_groups}
    assert groups["Floor 3"].path == ["USA", "New York", "Floor 3"]
    assert groups["Floor 3"].parent == "New York"
    assert groups["USA"].attributes == {"tz": "ET"}
    assert groups["New York"].things == ["sensor-001", "sensor-004", "sensor-007", "sensor-010"]
    things = {t.name: t for t in inventory.things}
    assert len(things) == 12
    t4 = things["sensor-004"]
    assert t4.thing_type == "temp-sensor"
    assert t4.attributes == {"model": "m1"}
    assert t4.groups == ["New York"]
    assert t4.version == 1
    shadows = {s.name: s for s in t4.shadows}
    assert shadows[None].desired == {"rate": 4}
    assert shadows[None].reported == {"rate": 0}
    assert shadows["config"].desired == {"mode": "eco"}
    assert len(things["sensor-005"].shadows) == 1
    certs = {c.arn: c for c in inventory.certificates}
    assert len(certs) == 12
    for name, pem in pems.items():
        (cert_arn,) = things[name].principals
        cert = certs[cert_arn]
        assert cert.things == [name]
        assert cert.policies == ["device"]
        assert (cert.sha1_thumbprint, cert.sha256_thumbprint) == thumbprints(pem)
    kinds = {certs[things[f"sensor-00{i}"].principals[0]].issuer for i in range(3)}
    assert kinds == {"aws", "registered-ca", "registered-without-ca"}
    assert inventory.ca_certificates[0].status == "ACTIVE"
    assert inventory.policies[0].document["Statement"][0]["Action"] == "iot:*"
    assert inventory.rules[0].sql == "SELECT * FROM 'temp-sensor/+'"
    assert inventory.jobs[0].job_id == "fw-1"
    assert inventory.findings == []
    assert not (tmp_path / "inventory.json.journal").exists()


async def test_interrupted_discovery_resumes_without_reading_everything_again(
    server, tmp_path: Path
) -> None:
    build_small_estate(server, things=20)
    output = tmp_path / "inventory.json"

    class StopDiscoveryError(Exception):
        pass

    def stop_after_ten(phase: str, done: int, _total: int | None) -> None:
        if phase == "things" and done == 10:
            raise StopDiscoveryError

    with pytest.raises(ExceptionGroup) as info:
        await discover(
            cloud_for(server),
            output,
            DiscoveryOptions(rate_scale=0, concurrency=1, progress=stop_after_ten),
        )
    assert info.group_contains(StopDiscoveryError)
    assert not output.exists()
    calls: list[str] = []
    server.iot_data_hooks.after(
        "get_thing_shadow", lambda call: calls.append(call.arguments["thing_name"])
    )
    counted: list[str] = []
    inventory = await discover(
        cloud_for(server),
        output,
        DiscoveryOptions(rate_scale=0, progress=lambda p, _d, _t: counted.append(p)),
    )
    assert len(inventory.things) == 20
    assert counted.count("things") == 10, "only the things not journaled are read again"
    assert len(set(calls)) == 10


async def test_failures_become_findings_and_discovery_goes_on(server, tmp_path: Path) -> None:
    build_small_estate(server, things=6)

    def deny(_call: object) -> None:
        error = JsonRESTError("AccessDeniedException", "not allowed to list rules")
        error.code = 403
        raise error

    def vanish(call) -> None:
        if call.arguments["thing_name"] == "sensor-002":
            raise ResourceNotFoundException

    server.iot_hooks.before("list_topic_rules", deny)
    server.iot_hooks.before("list_thing_principals", vanish)
    inventory = await discover(
        cloud_for(server), tmp_path / "inv.json", DiscoveryOptions(rate_scale=0)
    )
    codes = {(f.code, f.resource) for f in inventory.findings}
    assert ("DeletedDuringScan", "sensor-002") in codes
    assert any(code == "AccessDenied" for code, _ in codes)
    assert inventory.rules == []
    assert "sensor-002" not in {t.name for t in inventory.things}
    assert len(inventory.things) == 5


async def test_realistic_estate_is_discovered_whole(plane: ControlPlane, tmp_path: Path) -> None:
    estate = build_estate(plane.moto, plane.shadows, EstateSpec(things=40, legacy_things=3))
    inventory = await discover(
        cloud_for(plane.moto), tmp_path / "inv.json", DiscoveryOptions(rate_scale=0)
    )
    assert len(inventory.things) == 43
    groups = {g.name: g for g in inventory.thing_groups}
    assert groups["new-york-site-1"].path == ["AMER", "USA", "New York", "new-york-site-1"]
    assert {t.name: t.deprecated for t in inventory.thing_types}["legacy-sensor"] is True
    by_arn = {c.arn: c for c in inventory.certificates}
    for thing in inventory.things:
        device = estate.devices[thing.name]
        (arn,) = thing.principals
        assert by_arn[arn].sha256_thumbprint == thumbprints(device.certificate_pem)[1]
        assert thing.groups == [device.site]
    issuers = {c.issuer for c in inventory.certificates}
    assert issuers == {"aws", "registered-ca"}
    assert {r.name for r in inventory.rules} >= {"temperature_to_timestream", "power_to_timestream"}
    named = [t for t in inventory.things if any(s.name == "config" for s in t.shadows)]
    assert 0 < len(named) < 43


async def test_disabled_registry_events_are_recorded_and_the_plan_flags_them(
    tmp_path: Path,
) -> None:
    from bridge.plan import PlanOptions, build_plan  # noqa: PLC0415 - this test only

    with control_plane(REGION, registry_events=False) as plane:
        plane.client().create_thing(thingName="t1")
        inventory = await discover(
            cloud_for(plane.moto), tmp_path / "inventory.json", DiscoveryOptions(rate_scale=0)
        )
    assert inventory.event_configurations is not None
    assert not any(inventory.event_configurations.values())
    gaps = {gap.code: gap for gap in build_plan(inventory, PlanOptions()).plan.gaps}
    gap = gaps["REGISTRY_EVENTS_DISABLED"]
    assert gap.resources == [
        "THING",
        "THING_GROUP",
        "THING_GROUP_MEMBERSHIP",
        "THING_GROUP_HIERARCHY",
        "THING_TYPE_ASSOCIATION",
    ]
    assert "aws iot update-event-configurations" in gap.recommendation
    assert "--enable-registry-events" in gap.recommendation
