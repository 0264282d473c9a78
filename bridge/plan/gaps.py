"""AWS features in the inventory with no faithful Azure equivalent, and what to do instead."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable

from bridge.aws.event_config import disabled, enable_command
from bridge.inventory.models import Inventory, Policy
from bridge.mapping.models import DevicePlan, Gap, RulePlan

__all__ = ["EXPIRY_WARNING_DAYS", "find_gaps"]

EXPIRY_WARNING_DAYS = 90
_ACTIVE_JOB_STATUSES = {"IN_PROGRESS", "SCHEDULED"}
_TWIN_LIMIT_CODES = {
    "TWIN_TAGS_TOO_LARGE",
    "TWIN_DESIRED_TOO_LARGE",
    "TWIN_REPORTED_TOO_LARGE",
    "TWIN_TOO_DEEP",
    "TWIN_ENTRY_REFUSED",
    "SHADOW_KEY_COLLISION",
}


def find_gaps(inventory: Inventory, devices: list[DevicePlan], rules: list[RulePlan]) -> list[Gap]:
    """Every gap, sorted by code then title so plans diff well."""
    gaps = [
        *_policy_gaps(inventory),
        *_job_gaps(inventory),
        *_twin_gaps(devices),
        *_rule_gaps(rules),
        *_thing_type_gaps(inventory),
        *_dynamic_group_gaps(inventory),
        *_certificate_gaps(inventory),
        *_greengrass_gaps(inventory),
        *_fleet_indexing_gaps(inventory),
        *_event_configuration_gaps(inventory),
        *_discovery_gaps(inventory),
    ]
    return sorted(gaps, key=lambda gap: (gap.code, gap.title))


def _policy_gaps(inventory: Inventory) -> Iterable[Gap]:
    things_by_cert = {cert.arn: cert.things for cert in inventory.certificates}
    members = {group.arn: group.things for group in inventory.thing_groups if group.arn}
    devices: dict[str, set[str]] = defaultdict(set)
    for cert in inventory.certificates:
        for policy_name in cert.policies:
            devices[policy_name].update(cert.things)
    for policy in inventory.policies:
        for target in policy.targets:
            devices[policy.name].update(things_by_cert.get(target, members.get(target, [])))
    for policy in sorted(inventory.policies, key=lambda p: p.name):
        if not devices[policy.name]:
            continue
        scoped = "per-device (policy variables)" if _uses_variables(policy) else "shared"
        yield Gap(
            code="IOT_POLICY",
            title=f"IoT policy {policy.name}",
            detail=f"{scoped} topic and action permissions; IoT Hub has no per-device "
            "topic ACLs: every device may use exactly its own fixed topics",
            recommendation="rely on IoT Hub's per-identity topics; enforce any topic-level "
            "restriction in the relay and in downstream consumers, and review the policy's "
            "publish/subscribe grants against the new topics",
            devices=sorted(devices[policy.name]),
            resources=[policy.arn or policy.name],
        )


def _uses_variables(policy: Policy) -> bool:
    return "${iot:" in str(policy.document)


def _job_gaps(inventory: Inventory) -> Iterable[Gap]:
    members = {group.arn: group.things for group in inventory.thing_groups if group.arn}
    for job in sorted(inventory.jobs, key=lambda j: j.job_id):
        if job.status not in _ACTIVE_JOB_STATUSES:
            continue
        targets = {
            name
            for target in job.targets
            for name in members.get(target, [target.rsplit("/", 1)[-1]])
        }
        yield Gap(
            code="JOB_IN_FLIGHT",
            title=f"job {job.job_id} ({job.status}, {job.target_selection or 'SNAPSHOT'})",
            detail="AWS IoT jobs do not migrate and their status is not ground truth; IoT Hub "
            "jobs schedule direct methods and twin updates, with no job documents, rollouts, "
            "aborts or device-side job topics",
            recommendation="let the job finish or cancel it before cutting its devices over; "
            "judge success on the device, never on the job status",
            devices=sorted(targets),
            resources=[job.arn or job.job_id],
        )
    finished = [job.job_id for job in inventory.jobs if job.status not in _ACTIVE_JOB_STATUSES]
    if finished:
        yield Gap(
            code="JOB_HISTORY",
            title=f"{len(finished)} finished jobs",
            detail="job history and execution records stay in AWS",
            recommendation="export job executions for audit before the AWS account is retired",
            resources=sorted(finished),
        )


def _twin_gaps(devices: list[DevicePlan]) -> Iterable[Gap]:
    by_code: dict[str, list[str]] = defaultdict(list)
    for device in devices:
        for finding in device.findings:
            if finding.code in _TWIN_LIMIT_CODES:
                by_code[finding.code].append(device.thing_name)
    for code, names in sorted(by_code.items()):
        if code == "TWIN_TAGS_TOO_LARGE":  # tags hold the registry side, not the shadows
            title = "thing attributes and groups that do not fit twin tags"
            recommendation = (
                "shorten or drop attributes before migrating (AWS allows 50 attributes of "
                "800 characters on a typed thing, far over 8 KB of tags), or keep the long "
                "ones outside the twin"
            )
        else:
            title = f"shadows that do not fit a twin ({code})"
            recommendation = (
                "move bulky or rarely used named shadows to blob storage or a second module "
                "twin, or trim the documents before migrating"
            )
        yield Gap(
            code=code,
            title=title,
            detail="IoT Hub twins hold 32 KB desired, 32 KB reported, 8 KB tags, 10 levels "
            "deep, names up to 1 KB and strings up to 4 KB; named shadows share one twin; "
            "a device whose tags or desired do not fit is FAILED in the mirror (not "
            "created, or no longer updated) until AWS makes it fit; reported state that "
            "does not fit is held back",
            recommendation=recommendation,
            devices=sorted(set(names)),
        )


def _rule_gaps(rules: list[RulePlan]) -> Iterable[Gap]:
    for rule in rules:
        if rule.route_name is None:
            yield Gap(
                code="RULE_NOT_ROUTED",
                title=f"rule {rule.rule_name}",
                detail="; ".join(rule.issues) or "no route could be derived",
                recommendation="build the replacement by hand: "
                + ("; ".join(rule.manual_actions) or "see the issues"),
                resources=[rule.rule_name],
            )
        elif rule.issues or rule.manual_actions:
            yield Gap(
                code="RULE_PARTIAL",
                title=f"rule {rule.rule_name} -> route {rule.route_name}",
                detail="; ".join(rule.issues) or "some actions are not routing endpoints",
                recommendation="the route carries the messages; also do by hand: "
                + ("; ".join(rule.manual_actions) or "review the issues"),
                resources=[rule.rule_name],
            )


def _thing_type_gaps(inventory: Inventory) -> Iterable[Gap]:
    for thing_type in sorted(inventory.thing_types, key=lambda t: t.name):
        users = sorted(t.name for t in inventory.things if t.thing_type == thing_type.name)
        if thing_type.deprecated and users:
            yield Gap(
                code="DEPRECATED_THING_TYPE",
                title=f"deprecated thing type {thing_type.name} still in use",
                detail="IoT Hub has no thing types; the type becomes the tag aws.thingType and "
                "deprecation has no meaning there",
                recommendation="retype or retire these devices before migrating them, or "
                "accept the stale type in their tags",
                devices=users,
            )


def _dynamic_group_gaps(inventory: Inventory) -> Iterable[Gap]:
    for group in sorted(inventory.thing_groups, key=lambda g: g.name):
        if group.dynamic:
            yield Gap(
                code="DYNAMIC_THING_GROUP",
                title=f"dynamic thing group {group.name}",
                detail=f"membership follows the fleet index query {group.query_string!r}; "
                "IoT Hub has no groups, only twin queries",
                recommendation="express the query over twin tags (attributes are in "
                "tags.aws.attributes) and use it where the group was targeted",
                devices=sorted(group.things),
            )


def _certificate_gaps(inventory: Inventory) -> Iterable[Gap]:
    horizon = inventory.generated_at + dt.timedelta(days=EXPIRY_WARNING_DAYS)
    expiring: set[str] = set()
    inactive: set[str] = set()
    for cert in inventory.certificates:
        if cert.status != "ACTIVE":
            inactive.update(cert.things)
        elif cert.not_after is not None and cert.not_after <= horizon:
            expiring.update(cert.things)
    if expiring:
        yield Gap(
            code="CERTIFICATE_EXPIRING",
            title=f"certificates expiring within {EXPIRY_WARNING_DAYS} days",
            detail="IoT Hub stores the thumbprint of today's certificate; a renewed "
            "certificate has a new thumbprint",
            recommendation="renew before cutover, or plan a thumbprint update (secondary "
            "thumbprint) together with the renewal",
            devices=sorted(expiring),
        )
    if inactive:
        yield Gap(
            code="CERTIFICATE_INACTIVE",
            title="inactive or revoked certificates attached to things",
            detail="only ACTIVE certificates become thumbprints",
            recommendation="detach them in AWS, or reactivate them if they are still used",
            devices=sorted(inactive),
        )


def _greengrass_gaps(inventory: Inventory) -> Iterable[Gap]:
    def looks_like_greengrass(*texts: str | None) -> bool:
        return any("greengrass" in (text or "").lower() for text in texts)

    cores = sorted(
        thing.name
        for thing in inventory.things
        if looks_like_greengrass(
            thing.name, thing.thing_type, *thing.attributes, *thing.attributes.values()
        )
    )
    if cores:
        yield Gap(
            code="GREENGRASS",
            title="Greengrass core devices",
            detail="Greengrass components, deployments and local brokers have no IoT Hub "
            "equivalent",
            recommendation="migrate these to Azure IoT Edge by design work; do not cut them "
            "over with the plain device flow",
            devices=cores,
        )


def _fleet_indexing_gaps(inventory: Inventory) -> Iterable[Gap]:
    if inventory.fleet_indexing:
        yield Gap(
            code="FLEET_INDEXING",
            title="fleet indexing queries",
            detail="fleet indexing queries, aggregations and dynamic groups do not carry over",
            recommendation="rewrite queries in the IoT Hub query language over twin tags and "
            "properties; aggregations need Azure Data Explorer or Digital Twins",
        )


def _event_configuration_gaps(inventory: Inventory) -> Iterable[Gap]:
    """The mirror lives on registry events: say which are off before `run` refuses."""
    configurations = inventory.event_configurations
    if configurations is None:
        yield Gap(
            code="REGISTRY_EVENTS_UNKNOWN",
            title="registry event configuration not read",
            detail="discover could not read the event configuration "
            "(iot:DescribeEventConfigurations), so whether AWS publishes the registry events "
            "the mirror needs is unknown",
            recommendation="grant iot:DescribeEventConfigurations and discover again; "
            "`iot-bridge run` checks it at start either way",
        )
        return
    off = disabled(configurations)
    if off:
        yield Gap(
            code="REGISTRY_EVENTS_DISABLED",
            title=f"registry events off: {', '.join(off)}",
            detail="AWS publishes no events of these types, so the mirror would see such "
            "changes only at its anti-entropy passes; `iot-bridge run` refuses to start",
            recommendation=f"enable them ({enable_command(off)}) or run the bridge with "
            "--enable-registry-events",
            resources=off,
        )


def _discovery_gaps(inventory: Inventory) -> Iterable[Gap]:
    things = {thing.name for thing in inventory.things}
    by_code: dict[str, list[str]] = defaultdict(list)
    messages: dict[str, str] = {}
    for finding in inventory.findings:
        by_code[finding.code].append(finding.resource or "")
        messages.setdefault(finding.code, finding.message)
    for code, resources in sorted(by_code.items()):
        yield Gap(
            code=f"DISCOVERY_{code}",
            title=f"discovery finding {code} ({len(resources)}x)",
            detail=messages[code],
            recommendation="resolve in AWS (or accept) and run discover again before planning "
            "the wave that contains these resources",
            devices=sorted({r for r in resources if r in things}),
            resources=sorted({r for r in resources if r and r not in things}),
        )
