"""Discovery against the AWS stand-in's control plane (moto in server mode) through aiobotocore."""

import json
from collections.abc import Iterator
from pathlib import Path

import boto3
import botocore.config
import pytest
from moto.core.exceptions import JsonRESTError
from moto.iot.exceptions import ResourceNotFoundException
from pydantic import SecretStr

from bridge.config import CloudSettings
from bridge.discover import DiscoveryOptions, discover
from bridge.inventory.models import Inventory
from bridge.sim.aws.moto_server import MotoServer
from bridge.sim.estate import EstateSpec, build_estate
from bridge.sim.pki import CertificateAuthority, self_signed, thumbprints
from tests.standins import ControlPlane, control_plane

REGION = "us-west-2"


@pytest.fixture
def plane() -> Iterator[ControlPlane]:
    with control_plane(REGION) as plane:
        yield plane


@pytest.fixture
def server(plane: ControlPlane) -> MotoServer:
    return plane.moto


def cloud_for(server: MotoServer) -> CloudSettings:
    return CloudSettings(
        AWS_REGION=REGION,
        AWS_ENDPOINT_URL=server.endpoint_url,
        AWS_ACCESS_KEY_ID=SecretStr("testing"),
        AWS_SECRET_ACCESS_KEY=SecretStr("testing"),
    )


def clients(server: MotoServer):
    kwargs = {
        "endpoint_url": server.endpoint_url,
        "region_name": REGION,
        "aws_access_key_id": "testing",
        "aws_secret_access_key": "testing",
        "config": botocore.config.Config(retries={"max_attempts": 1}),
    }
    return boto3.client("iot", **kwargs), boto3.client("iot-data", **kwargs)


def build_small_estate(server: MotoServer, things: int = 12) -> dict[str, str]:
    """A small estate with every kind of resource; returns thing -> certificate PEM."""
    iot, data = clients(server)
    iot.create_thing_type(
        thingTypeName="temp-sensor", thingTypeProperties={"searchableAttributes": ["model"]}
    )
    iot.create_thing_type(thingTypeName="legacy")
    iot.deprecate_thing_type(thingTypeName="legacy")
    iot.create_thing_group(
        thingGroupName="USA",
        thingGroupProperties={"attributePayload": {"attributes": {"tz": "ET"}}},
    )
    iot.create_thing_group(thingGroupName="New York", parentGroupName="USA")
    iot.create_thing_group(thingGroupName="Floor 3", parentGroupName="New York")
    policy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "iot:*", "Resource": "*"}],
    }
    iot.create_policy(policyName="device", policyDocument=json.dumps(policy))
    ca = CertificateAuthority.create("Estate CA")
    iot.register_ca_certificate(
        caCertificate=ca.cert_pem, setAsActive=True, verificationCertificate="x"
    )
    pems = {}
    for i in range(things):
        name = f"sensor-{i:03d}"
        iot.create_thing(
            thingName=name,
            thingTypeName="temp-sensor",
            attributePayload={"attributes": {"model": f"m{i % 3}"}},
        )
        if i % 3 == 0:
            cert = iot.create_keys_and_certificate(setAsActive=True)
            arn, pem = cert["certificateArn"], cert["certificatePem"]
        elif i % 3 == 1:
            pem = ca.issue(name).cert_pem
            reg = iot.register_certificate(
                certificatePem=pem, caCertificatePem=ca.cert_pem, setAsActive=True
            )
            arn = reg["certificateArn"]
        else:
            pem = self_signed(name).cert_pem
            arn = iot.register_certificate_without_ca(certificatePem=pem, status="ACTIVE")[
                "certificateArn"
            ]
        pems[name] = pem
        iot.attach_policy(policyName="device", target=arn)
        iot.attach_thing_principal(thingName=name, principal=arn)
        group = ("USA", "New York", "Floor 3")[i % 3]
        iot.add_thing_to_thing_group(thingGroupName=group, thingName=name)
        data.update_thing_shadow(
            thingName=name,
            payload=json.dumps({"state": {"desired": {"rate": i}, "reported": {"rate": 0}}}),
        )
        if i % 4 == 0:
            data.update_thing_shadow(
                thingName=name,
                shadowName="config",
                payload=json.dumps({"state": {"desired": {"mode": "eco"}}}),
            )
    iot.create_topic_rule(
        ruleName="to_timestream",
        topicRulePayload={
            "sql": "SELECT * FROM 'temp-sensor/+'",
            "actions": [
                {"lambda": {"functionArn": "arn:aws:lambda:us-west-2:123456789012:function:f"}}
            ],
            "ruleDisabled": False,
            "awsIotSqlVersion": "2016-03-23",
        },
    )
    iot.create_job(
        jobId="fw-1",
        targets=[f"arn:aws:iot:{REGION}:123456789012:thinggroup/USA"],
        document='{"v": 2}',
    )
    return pems


async def test_inventory_holds_every_field_of_the_estate(server, tmp_path: Path) -> None:
    pems = build_small_estate(server)
    output = tmp_path / "inventory.json"
    inventory = await discover(cloud_for(server), output, DiscoveryOptions(rate_scale=0))
    assert Inventory.model_validate_json(output.read_text()) == inventory
    assert inventory.schema_version == "1.0"
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
