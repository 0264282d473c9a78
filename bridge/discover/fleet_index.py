"""Shadows in pages from fleet indexing (SearchIndex), when the account indexes them.

With thing indexing in REGISTRY_AND_SHADOW mode, one SearchIndex page brings the classic
shadow (and the named shadows listed in the indexing filter) of up to 100 things, where
listing needs a GetThingShadow per shadow. What the index cannot say is still read per
thing: principals, which named shadows exist (ListNamedShadowsForThing) and those outside
the filter. The index is eventually consistent on AWS: a thing created moments ago may be
missing (its shadows are then read one by one), and a shadow may be a few seconds old.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from bridge.discover.shadows import from_index
from bridge.errors import Denied, Gone

if TYPE_CHECKING:
    from bridge.discover.crawler import Context
    from bridge.inventory.models import Shadow

__all__ = ["SHADOWS_INDEXED", "indexed_shadows", "thing_indexing_mode"]

SHADOWS_INDEXED = "REGISTRY_AND_SHADOW"
_PAGE = 100  # SearchIndex's largest page
_QUERY = "thingName:*"


async def thing_indexing_mode(ctx: Context) -> str:
    """OFF, REGISTRY or REGISTRY_AND_SHADOW."""
    answer = await ctx.iot.call("get_indexing_configuration")
    return str(answer.get("thingIndexingConfiguration", {}).get("thingIndexingMode", "OFF"))


async def indexed_shadows(ctx: Context) -> dict[str, dict[str | None, Shadow]] | None:
    """thing -> its indexed shadows (None key: classic), or None if the index cannot be read."""
    found: dict[str, dict[str | None, Shadow]] = {}
    token: str | None = None
    try:
        while True:
            kwargs: dict[str, Any] = {"queryString": _QUERY, "maxResults": _PAGE}
            if token:
                kwargs["nextToken"] = token
            page = await ctx.iot.call("search_index", indexName="AWS_Things", **kwargs)
            for thing in page.get("things", []):
                shadows = _shadows_of(ctx, thing)
                if shadows is not None:
                    found[thing["thingName"]] = shadows
            ctx.advance("index pages")
            token = page.get("nextToken")
            if not token:
                return found
    except (Denied, Gone, ClientError) as exc:
        # Not fatal: listing reads the same data, one request per shadow.
        ctx.finding("warning", "FleetIndexUnreadable", f"search_index: {exc}; listing instead")
        return None


def _shadows_of(ctx: Context, thing: dict[str, Any]) -> dict[str | None, Shadow] | None:
    """The thing's indexed shadows; None (read them one by one) if the index's are unreadable."""
    document = thing.get("shadow")
    if document is None:
        return {}
    try:
        return from_index(document)
    except (ValueError, KeyError, TypeError):
        ctx.finding(
            "info",
            "IndexedShadowUnreadable",
            "fleet index shadow is not a shadow document; read directly instead",
            thing["thingName"],
        )
        return None
