"""A realistic AWS IoT estate, built in the stand-in the way real teams lay one out.

Per sensor type: a thing type, a policy scoped to `${iot:Connection.Thing.ThingName}`,
telemetry on `SENSORTYPE/THINGNAME`, and a topic rule feeding a time-series store
(Timestream). Things sit in a region/country/city/site group hierarchy (four deep),
carry classic shadows and, for some, named shadows; most certificates are AWS-issued,
the rest come from the estate's own registered CA; one type is deprecated with things
still on it.

Built through moto's backend in this process (every hook fires: registry events,
versions, the broker's principal table), because 100,000 things through HTTP would
take longer than the rehearsal itself.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bridge_sim.aws.moto_server import MotoServer
from bridge_sim.aws.shadows import ShadowService
from bridge_sim.pki import CertificateAuthority

__all__ = ["Device", "Estate", "EstateSpec", "build_estate"]

HIERARCHY: dict[str, dict[str, dict[str, int]]] = {
    "AMER": {"USA": {"New York": 2, "Chicago": 2}, "Canada": {"Toronto": 1}},
    "EMEA": {"Germany": {"Berlin": 2, "Munich": 1}, "France": {"Paris": 2}},
    "APAC": {"Japan": {"Osaka": 1, "Tokyo": 2}},
}


@dataclass(frozen=True)
class EstateSpec:
    """How big and how varied the estate is."""

    things: int = 300
    sensor_types: tuple[str, ...] = ("temperature", "humidity", "vibration", "power")
    own_ca_share: float = 0.25
    named_shadow_share: float = 0.3
    legacy_things: int = 5
    seed: int = 7


@dataclass(frozen=True)
class Device:
    """A simulated device: its thing, certificate and private key (the device's own)."""

    thing_name: str
    sensor_type: str
    certificate_id: str
    certificate_pem: str
    private_key_pem: str
    topic: str
    site: str


@dataclass
class Estate:
    """What was built, for tests and rehearsals to drive devices with."""

    devices: dict[str, Device] = field(default_factory=dict)
    groups: dict[str, list[str]] = field(default_factory=dict)  # group -> path
    estate_ca: CertificateAuthority | None = None


def _policy(sensor: str, region: str, account: str) -> str:
    arn = f"arn:aws:iot:{region}:{account}"
    thing = "${iot:Connection.Thing.ThingName}"
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": "iot:Connect", "Resource": f"{arn}:client/{thing}"},
                {
                    "Effect": "Allow",
                    "Action": "iot:Publish",
                    "Resource": [
                        f"{arn}:topic/{sensor}/{thing}",
                        f"{arn}:topic/$aws/things/{thing}/*",
                    ],
                },
                {
                    "Effect": "Allow",
                    "Action": "iot:Subscribe",
                    "Resource": f"{arn}:topicfilter/$aws/things/{thing}/*",
                },
                {
                    "Effect": "Allow",
                    "Action": "iot:Receive",
                    "Resource": f"{arn}:topic/$aws/things/{thing}/*",
                },
            ],
        }
    )


def _rule(sensor: str) -> dict[str, Any]:
    return {
        "rule_name": f"{sensor}_to_timestream",
        "sql": f"SELECT value, unit, topic(2) AS device FROM '{sensor}/+' WHERE value <> -1",  # noqa: S608 - AWS IoT SQL, not a database
        "description": f"{sensor} readings into the time-series store",
        "rule_disabled": False,
        "aws_iot_sql_version": "2016-03-23",
        "actions": [
            {
                "timestream": {
                    "roleArn": "arn:aws:iam::123456789012:role/iot-timestream",
                    "databaseName": "telemetry",
                    "tableName": sensor,
                    "dimensions": [{"name": "device", "value": "${topic(2)}"}],
                }
            }
        ],
        "error_action": None,
    }


def _sites() -> list[tuple[str, list[str]]]:
    """Every site group with its root-to-site path."""
    sites = []
    for region, countries in HIERARCHY.items():
        for country, cities in countries.items():
            for city, count in cities.items():
                for n in range(1, count + 1):
                    site = f"{city.lower().replace(' ', '-')}-site-{n}"
                    sites.append((site, [region, country, city, site]))
    return sites


def build_estate(
    moto: MotoServer,
    shadows: ShadowService,
    spec: EstateSpec | None = None,
    *,
    progress: Callable[[int], None] | None = None,
) -> Estate:
    """Create the estate in the stand-in and return its devices."""
    spec = spec or EstateSpec()
    rng = random.Random(spec.seed)  # noqa: S311 - a reproducible layout, not security
    backend = moto.iot
    region, account = moto.region, moto.account_id
    estate = Estate(estate_ca=CertificateAuthority.create("Contoso Devices CA"))
    assert estate.estate_ca is not None
    backend.register_ca_certificate(
        ca_certificate=estate.estate_ca.cert_pem, set_as_active=True, registration_config={}
    )
    for sensor in spec.sensor_types:
        backend.create_thing_type(
            thing_type_name=f"{sensor}-sensor",
            thing_type_properties={
                "thingTypeDescription": f"{sensor} sensor",
                "searchableAttributes": ["model", "firmware"],
            },
        )
        backend.create_policy(
            policy_name=f"{sensor}-device", policy_document=_policy(sensor, region, account)
        )
        backend.create_topic_rule(**_rule(sensor))
    backend.create_thing_type(thing_type_name="legacy-sensor", thing_type_properties={})
    backend.create_policy(
        policy_name="legacy-device", policy_document=_policy("legacy", region, account)
    )
    for _site, path in _sites():
        for depth, name in enumerate(path):
            if name not in estate.groups:
                backend.create_thing_group(
                    thing_group_name=name,
                    parent_group_name=path[depth - 1] if depth else None,
                    thing_group_properties={
                        "attributePayload": {"attributes": {"level": str(depth)}}
                    },
                )
                estate.groups[name] = path[: depth + 1]
    sites = _sites()
    for index in range(spec.things + spec.legacy_things):
        legacy = index >= spec.things
        sensor = "legacy" if legacy else spec.sensor_types[index % len(spec.sensor_types)]
        name = f"{sensor}-{index:06d}"
        site, _path = sites[index % len(sites)]
        backend.create_thing(
            thing_name=name,
            thing_type_name=f"{sensor}-sensor",
            attribute_payload={
                "attributes": {
                    "model": f"{sensor[:3].upper()}-{rng.randint(1, 4)}",
                    "firmware": "1.4.2",
                }
            },
        )
        if rng.random() < spec.own_ca_share:
            issued = estate.estate_ca.issue(name)
            cert = backend.register_certificate(
                certificate_pem=issued.cert_pem,
                ca_certificate_pem=estate.estate_ca.cert_pem,
                set_as_active=True,
                status="ACTIVE",
            )
            cert_pem, key_pem = issued.cert_pem, issued.key_pem
        else:
            cert, keys = backend.create_keys_and_certificate(set_as_active=True)
            cert_pem, key_pem = cert.certificate_pem, keys["PrivateKey"]
        backend.attach_policy(policy_name=f"{sensor}-device", target=cert.arn)
        backend.attach_thing_principal(thing_name=name, principal_arn=cert.arn)
        backend.add_thing_to_thing_group(
            thing_group_name=site, thing_group_arn=None, thing_name=name, thing_arn=None
        )
        shadows.apply_update(
            name,
            None,
            {
                "state": {
                    "desired": {"interval_s": 60},
                    "reported": {"interval_s": 60, "online": True},
                }
            },
        )
        if rng.random() < spec.named_shadow_share:
            shadows.apply_update(
                name,
                "config",
                {"state": {"desired": {"unit": "metric", "alarm": rng.randint(30, 90)}}},
            )
        estate.devices[name] = Device(
            thing_name=name,
            sensor_type=sensor,
            certificate_id=cert.certificate_id,
            certificate_pem=cert_pem,
            private_key_pem=key_pem,
            topic=f"{sensor}/{name}",
            site=site,
        )
        if progress is not None:
            progress(index + 1)
    backend.deprecate_thing_type(thing_type_name="legacy-sensor", undo_deprecate=False)
    return estate
