"""Things with their groups, principals and shadows, by listing or with the fleet index.

ListThings gives names, ARNs, types, attributes and versions (the index has no ARN or
version). Shadows come from the index when it holds them (`fleet_index`), otherwise one
GetThingShadow each. Either way the Thing records are the same.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any

from bridge.discover.fleet_index import SHADOWS_INDEXED, indexed_shadows
from bridge.discover.journal import as_model
from bridge.discover.shadows import named_shadow_names, read_shadow
from bridge.errors import Gone
from bridge.inventory.models import Shadow, Thing

if TYPE_CHECKING:
    from bridge.discover.crawler import Context
    from bridge.inventory.models import ThingGroup

__all__ = ["things"]

_LIST_PAGE = 250  # ListThings' and ListThingPrincipals' largest page
Indexed = dict[str | None, Shadow]


async def _principals(ctx: Context, thing: str) -> list[str]:
    # A direct call rather than a paginator: one page is the rule, and a paginator per
    # thing costs more client time than the request itself.
    found: list[str] = []
    token: str | None = None
    while True:
        kwargs: dict[str, Any] = {"thingName": thing, "maxResults": _LIST_PAGE}
        if token:
            kwargs["nextToken"] = token
        page = await ctx.iot.call("list_thing_principals", **kwargs)
        found.extend(page.get("principals", []))
        token = page.get("nextToken")
        if not token:
            return found


async def _shadows(ctx: Context, thing: str, indexed: Indexed | None) -> list[Shadow]:
    """Classic then named shadows; from `indexed` where it has them (None: not indexed)."""
    shadows: list[Shadow] = []
    for name in [None, *await named_shadow_names(ctx, thing)]:
        if indexed is not None and (name is None or name in indexed):
            # The index is the answer for the classic shadow (absent: there is none) and
            # for the named shadows it holds; others fall outside its filter.
            shadow = indexed.get(name)
        else:
            shadow = await read_shadow(ctx, thing, name)
        if shadow is not None:
            shadows.append(shadow)
    return shadows


async def things(ctx: Context, groups: list[ThingGroup], indexing_mode: str | None) -> list[Thing]:
    """Every thing with its groups, attached principals and shadows."""
    listed = [
        item
        async for item in ctx.iot.pages(
            "list_things", "things", PaginationConfig={"PageSize": _LIST_PAGE}
        )
    ]
    index: dict[str, Indexed] | None = None
    if ctx.options.shadows and indexing_mode == SHADOWS_INDEXED:
        index = await indexed_shadows(ctx)
    memberships: dict[str, list[str]] = defaultdict(list)
    for group in groups:
        for member in group.things:
            memberships[member].append(group.name)
    done = ctx.journal.done["thing"]
    names = [item["thingName"] for item in listed]

    async def read(item: dict[str, Any]) -> None:
        name = item["thingName"]
        if name in done:
            return
        indexed = index.pop(name, None) if index is not None else None
        try:
            principals = await _principals(ctx, name)
            shadows = await _shadows(ctx, name, indexed) if ctx.options.shadows else []
        except Gone:
            ctx.finding("info", "DeletedDuringScan", "thing deleted while discovery ran", name)
            return
        thing = Thing(
            name=name,
            arn=item.get("thingArn"),
            thing_type=item.get("thingTypeName"),
            attributes=item.get("attributes", {}),
            version=item.get("version"),
            groups=sorted(memberships.get(name, [])),
            principals=sorted(principals),
            shadows=shadows,
        )
        ctx.journal.record("thing", name, thing)
        ctx.advance("things", len(names))

    await ctx.pool(listed, read)
    return [as_model(Thing, done.pop(name)) for name in names if name in done]
