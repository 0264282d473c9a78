"""A small estate with every kind of resource, built through boto3 against the stand-in."""

import json

import boto3
import botocore.config
from pydantic import SecretStr

from bridge.config import CloudSettings
from bridge_sim.aws.moto_server import MotoServer
from bridge_sim.pki import CertificateAuthority, self_signed

REGION = "us-west-2"


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
