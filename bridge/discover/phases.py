"""One reader per kind of resource; each returns inventory models and journals its work.

Things, the largest collection, have their own module (`things`).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel

from bridge.aws.certificates import certificate_from_description
from bridge.discover.journal import as_model
from bridge.errors import Gone
from bridge.inventory.models import (
    CaCertificate,
    Certificate,
    Job,
    Policy,
    Thing,
    ThingGroup,
    ThingType,
    TopicRule,
)
from bridge.x509 import describe

if TYPE_CHECKING:
    from bridge.discover.crawler import Context

M = TypeVar("M", bound=BaseModel)
_PAGE = 250  # the largest page of ListCertificates and ListThingsInThingGroup


async def _whole(
    ctx: Context, name: str, model: type[M], read: Callable[[], Awaitable[list[M]]]
) -> list[M]:
    """A small collection, read in one go and journaled as a whole."""
    done = ctx.journal.done["phase"].get(name)
    if done is not None:
        return [model.model_validate(item) for item in done]
    items = await read()
    ctx.journal.record("phase", name, [item.model_dump(mode="json") for item in items])
    return items


async def endpoint(ctx: Context) -> str:
    """The account's ATS data endpoint."""
    answer = await ctx.iot.call("describe_endpoint", endpointType="iot:Data-ATS")
    return str(answer["endpointAddress"])


async def thing_types(ctx: Context) -> list[ThingType]:
    """Every thing type, with its deprecation state."""

    async def read() -> list[ThingType]:
        found = []
        async for item in ctx.iot.pages("list_thing_types", "thingTypes"):
            props, meta = item.get("thingTypeProperties", {}), item.get("thingTypeMetadata", {})
            found.append(
                ThingType(
                    name=item["thingTypeName"],
                    arn=item.get("thingTypeArn"),
                    description=props.get("thingTypeDescription"),
                    searchable_attributes=props.get("searchableAttributes", []),
                    deprecated=bool(meta.get("deprecated")),
                    deprecation_date=meta.get("deprecationDate"),
                )
            )
            ctx.advance("thing types")
        return found

    return await _whole(ctx, "thing_types", ThingType, read)


async def policies(ctx: Context) -> list[Policy]:
    """Every policy with its default document and the principals it is attached to."""

    async def read() -> list[Policy]:
        found = []
        async for item in ctx.iot.pages("list_policies", "policies"):
            name = item["policyName"]
            detail = await ctx.iot.call("get_policy", policyName=name)
            text = detail.get("policyDocument", "")
            try:
                document: dict[str, Any] | str = json.loads(text)
            except ValueError:
                document = text
                ctx.finding("warning", "PolicyNotJson", "policy document is not JSON", name)
            targets = [
                t
                async for t in ctx.iot.pages("list_targets_for_policy", "targets", policyName=name)
            ]
            found.append(
                Policy(
                    name=name,
                    arn=item.get("policyArn"),
                    default_version_id=detail.get("defaultVersionId"),
                    document=document,
                    targets=targets,
                )
            )
            ctx.advance("policies")
        return found

    return await _whole(ctx, "policies", Policy, read)


async def ca_certificates(ctx: Context) -> list[CaCertificate]:
    """Every CA certificate registered with AWS IoT."""

    async def read() -> list[CaCertificate]:
        found = []
        async for item in ctx.iot.pages("list_ca_certificates", "certificates"):
            answer = await ctx.iot.call(
                "describe_ca_certificate", certificateId=item["certificateId"]
            )
            desc = answer["certificateDescription"]
            found.append(
                CaCertificate(
                    certificate_id=desc["certificateId"],
                    arn=desc["certificateArn"],
                    status=desc["status"],
                    pem=desc["certificatePem"],
                    auto_registration=desc.get("autoRegistrationStatus"),
                    subject=describe(desc["certificatePem"])[0],
                )
            )
        return found

    return await _whole(ctx, "ca_certificates", CaCertificate, read)


async def rules(ctx: Context) -> list[TopicRule]:
    """Every topic rule with its SQL and actions."""

    async def read() -> list[TopicRule]:
        found = []
        async for item in ctx.iot.pages("list_topic_rules", "rules"):
            answer = await ctx.iot.call("get_topic_rule", ruleName=item["ruleName"])
            rule = answer["rule"]
            found.append(
                TopicRule(
                    name=rule["ruleName"],
                    arn=answer.get("ruleArn"),
                    sql=rule["sql"],
                    sql_version=rule.get("awsIotSqlVersion"),
                    description=rule.get("description"),
                    disabled=bool(rule.get("ruleDisabled")),
                    actions=rule.get("actions", []),
                    error_action=rule.get("errorAction"),
                )
            )
        return found

    return await _whole(ctx, "rules", TopicRule, read)


async def jobs(ctx: Context) -> list[Job]:
    """Every job with its targets and document."""

    async def read() -> list[Job]:
        found = []
        async for item in ctx.iot.pages("list_jobs", "jobs"):
            job = (await ctx.iot.call("describe_job", jobId=item["jobId"]))["job"]
            document = (await ctx.iot.call("get_job_document", jobId=item["jobId"])).get("document")
            found.append(
                Job(
                    job_id=job["jobId"],
                    arn=job.get("jobArn"),
                    status=job["status"],
                    target_selection=job.get("targetSelection"),
                    targets=job.get("targets", []),
                    document=document,
                    description=job.get("description"),
                )
            )
        return found

    return await _whole(ctx, "jobs", Job, read)


async def thing_groups(ctx: Context) -> list[ThingGroup]:
    """Every thing group with parent, root-to-group path, attributes and direct members."""
    names = [item["groupName"] async for item in ctx.iot.pages("list_thing_groups", "thingGroups")]
    done = ctx.journal.done["group"]

    async def read(name: str) -> None:
        if name in done:
            return
        try:
            detail = await ctx.iot.call("describe_thing_group", thingGroupName=name)
            members = [
                t
                async for t in ctx.iot.pages(
                    "list_things_in_thing_group",
                    "things",
                    thingGroupName=name,
                    PaginationConfig={"PageSize": _PAGE},
                )
            ]
        except Gone:
            ctx.finding(
                "info", "DeletedDuringScan", "thing group deleted while discovery ran", name
            )
            return
        meta = detail.get("thingGroupMetadata", {})
        props = detail.get("thingGroupProperties", {})
        lineage = [g["groupName"] for g in meta.get("rootToParentThingGroups", [])]
        group = ThingGroup(
            name=name,
            arn=detail.get("thingGroupArn"),
            group_id=detail.get("thingGroupId"),
            parent=meta.get("parentGroupName"),
            path=[*lineage, name],
            description=props.get("thingGroupDescription"),
            attributes=props.get("attributePayload", {}).get("attributes", {}),
            version=detail.get("version"),
            dynamic=bool(detail.get("queryString")),
            query_string=detail.get("queryString"),
            things=sorted(members),
        )
        ctx.journal.record("group", name, group)
        ctx.advance("thing groups", len(names))

    await ctx.pool(list(names), read)
    # pop: the journal needs it no more once returned (memory at scale).
    return [as_model(ThingGroup, done.pop(name)) for name in names if name in done]


async def certificates(
    ctx: Context, found_things: list[Thing], found_policies: list[Policy]
) -> list[Certificate]:
    """Every certificate with PEM, thumbprints, issuer kind, things and policies."""
    listed = [
        item
        async for item in ctx.iot.pages(
            "list_certificates", "certificates", PaginationConfig={"PageSize": _PAGE}
        )
    ]
    things_of: dict[str, list[str]] = defaultdict(list)
    for thing in found_things:
        for principal in thing.principals:
            things_of[principal].append(thing.name)
    policies_of: dict[str, list[str]] = defaultdict(list)
    for policy in found_policies:
        for target in policy.targets:
            policies_of[target].append(policy.name)
    done = ctx.journal.done["certificate"]

    async def read(item: dict[str, Any]) -> None:
        cert_id = item["certificateId"]
        if cert_id in done:
            return
        try:
            desc = (await ctx.iot.call("describe_certificate", certificateId=cert_id))[
                "certificateDescription"
            ]
        except Gone:
            ctx.finding(
                "info", "DeletedDuringScan", "certificate deleted while discovery ran", cert_id
            )
            return
        arn = desc["certificateArn"]
        cert = certificate_from_description(desc).model_copy(
            update={
                "things": sorted(things_of.get(arn, [])),
                "policies": sorted(policies_of.get(arn, [])),
            }
        )
        ctx.journal.record("certificate", cert_id, cert)
        ctx.advance("certificates", total)

    ids, total = [item["certificateId"] for item in listed], len(listed)
    await ctx.pool(listed, read)
    return [as_model(Certificate, done.pop(i)) for i in ids if i in done]
