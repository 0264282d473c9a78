"""Every kind of gap, from small hand-made inventories, with the devices it affects."""

from __future__ import annotations

import datetime as dt

from bridge.aws.event_config import MIRROR_EVENT_TYPES
from bridge.inventory.models import (
    Certificate,
    Finding,
    Inventory,
    Job,
    Policy,
    Shadow,
    Thing,
    ThingGroup,
    ThingType,
    TopicRule,
)
from bridge.plan import AuthMode, PlanOptions, build_plan

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def cert(cid, things, *, status="ACTIVE", days=365, policies=()):
    return Certificate(
        certificate_id=cid,
        arn=f"arn:aws:iot:us-east-1:1:cert/{cid}",
        status=status,
        pem="not a pem",
        sha1_thumbprint="A" * 40,
        sha256_thumbprint="B" * 64,
        not_after=NOW + dt.timedelta(days=days),
        things=list(things),
        policies=list(policies),
    )


EVENTS_ON = dict.fromkeys(MIRROR_EVENT_TYPES, True)


def gaps_of(**fields):
    fields.setdefault("event_configurations", EVENTS_ON)
    inventory = Inventory(generated_at=NOW, region="us-east-1", **fields)
    plan = build_plan(inventory, PlanOptions(auth=AuthMode.SAS)).plan
    return {(gap.code, gap.title): gap for gap in plan.gaps}


def by_code(gaps, code):
    return [gap for (found, _), gap in gaps.items() if found == code]


def test_policies_attached_through_certificates_or_group_targets():
    certs = [cert("c1", ["a"], policies=["scoped"]), cert("c2", ["b"])]
    policies = [
        Policy(name="scoped", document={"Resource": "client/${iot:Connection.Thing.ThingName}"}),
        Policy(name="shared", document="{}", targets=["arn:group/g", certs[1].arn]),
        Policy(name="unused", document="{}"),
    ]
    groups = [ThingGroup(name="g", arn="arn:group/g", things=["c"])]
    gaps = by_code(
        gaps_of(certificates=certs, policies=policies, thing_groups=groups), "IOT_POLICY"
    )
    assert {gap.title: gap.devices for gap in gaps} == {
        "IoT policy scoped": ["a"],
        "IoT policy shared": ["b", "c"],
    }
    assert "per-device" in next(g.detail for g in gaps if g.title.endswith("scoped"))


def test_jobs_in_flight_expand_group_targets_and_history_is_one_gap():
    jobs = [
        Job(job_id="ota", status="IN_PROGRESS", targets=["arn:group/g", "arn:aws:iot:r:1:thing/x"]),
        Job(job_id="old", status="COMPLETED"),
    ]
    groups = [ThingGroup(name="g", arn="arn:group/g", things=["m1", "m2"])]
    gaps = gaps_of(jobs=jobs, thing_groups=groups)
    [in_flight] = by_code(gaps, "JOB_IN_FLIGHT")
    assert in_flight.devices == ["m1", "m2", "x"]
    assert by_code(gaps, "JOB_HISTORY")[0].resources == ["old"]


def test_named_shadows_over_the_twin_limit_are_a_gap_with_their_devices():
    big = Shadow(name="blob", version=1, desired={"b": "x" * 40_000}, size_bytes=40_010)
    things = [Thing(name="big", shadows=[big]), Thing(name="small")]
    [gap] = by_code(gaps_of(things=things), "TWIN_DESIRED_TOO_LARGE")
    assert gap.devices == ["big"]


def test_untranslatable_rules_and_lossy_rules():
    rules = [
        TopicRule(name="broken", sql="SELEC nonsense", actions=[{"kinesis": {"streamName": "s"}}]),
        TopicRule(
            name="projected",
            sql="SELECT temp FROM 'a/b'",
            sql_version="2016-03-23",
            actions=[{"kinesis": {"streamName": "s"}}],
        ),
    ]
    gaps = gaps_of(rules=rules)
    [broken] = by_code(gaps, "RULE_NOT_ROUTED")
    assert "SQL_ERROR" in broken.detail
    [partial] = by_code(gaps, "RULE_PARTIAL")
    assert "SELECT_PROJECTION" in partial.detail


def test_deprecated_types_in_use_and_dynamic_groups():
    types = [ThingType(name="old", deprecated=True), ThingType(name="unused", deprecated=True)]
    things = [Thing(name="t1", thing_type="old"), Thing(name="t2")]
    groups = [
        ThingGroup(name="hot", dynamic=True, query_string="attributes.temp > 50", things=["t2"])
    ]
    gaps = gaps_of(thing_types=types, things=things, thing_groups=groups)
    [deprecated] = by_code(gaps, "DEPRECATED_THING_TYPE")
    assert (deprecated.title, deprecated.devices) == (
        "deprecated thing type old still in use",
        ["t1"],
    )
    [dynamic] = by_code(gaps, "DYNAMIC_THING_GROUP")
    assert dynamic.devices == ["t2"]
    assert "attributes.temp > 50" in dynamic.detail


def test_certificates_near_expiry_or_inactive():
    certs = [
        cert("soon", ["a"], days=30),
        cert("later", ["b"], days=400),
        cert("revoked", ["c"], status="REVOKED"),
    ]
    gaps = gaps_of(certificates=certs)
    assert by_code(gaps, "CERTIFICATE_EXPIRING")[0].devices == ["a"]
    assert by_code(gaps, "CERTIFICATE_INACTIVE")[0].devices == ["c"]


def test_greengrass_fleet_indexing_and_discovery_findings():
    things = [
        Thing(name="gw-1", thing_type="GreengrassCoreV2"),
        Thing(name="gw-2").model_copy(update={"attributes": {"runtime": "greengrass"}}),
        Thing(name="plain"),
    ]
    findings = [
        Finding(severity="warning", code="ShadowUnreadable", message="bad", resource="plain"),
        Finding(severity="warning", code="ShadowUnreadable", message="bad", resource="ghost"),
    ]
    gaps = gaps_of(things=things, fleet_indexing=True, findings=findings)
    assert by_code(gaps, "GREENGRASS")[0].devices == ["gw-1", "gw-2"]
    assert by_code(gaps, "FLEET_INDEXING")
    [discovery] = by_code(gaps, "DISCOVERY_ShadowUnreadable")
    assert (discovery.devices, discovery.resources) == (["plain"], ["ghost"])


def test_a_clean_inventory_has_no_gaps():
    assert gaps_of(things=[Thing(name="fine")]) == {}


def test_registry_events_off_or_unread_are_flagged():
    off = gaps_of(
        event_configurations={**EVENTS_ON, "THING": False, "THING_GROUP_HIERARCHY": False}
    )
    (gap,) = by_code(off, "REGISTRY_EVENTS_DISABLED")
    assert gap.resources == ["THING", "THING_GROUP_HIERARCHY"]
    assert '"THING":{"Enabled":true}' in gap.recommendation
    (unknown,) = by_code(gaps_of(event_configurations=None), "REGISTRY_EVENTS_UNKNOWN")
    assert "iot:DescribeEventConfigurations" in unknown.recommendation
