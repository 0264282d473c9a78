"""Things by fleet-indexing query (`SearchIndex`), for choosing a wave's devices."""

from __future__ import annotations

from typing import Any

from bridge.aws.clients import AwsApi

__all__ = ["search_things"]

_PAGE = 100  # SearchIndex's largest page


async def search_things(iot: AwsApi, query: str) -> list[str]:
    """Names of every thing `query` matches in the AWS_Things index, sorted.

    Fleet indexing must be on (registry at least); AWS answers a query it cannot parse or
    an index that is off with an error the caller reports as it is.
    """
    found: list[str] = []
    token: str | None = None
    while True:
        kwargs: dict[str, Any] = {"queryString": query, "maxResults": _PAGE}
        if token:
            kwargs["nextToken"] = token
        page = await iot.call("search_index", indexName="AWS_Things", **kwargs)
        found += [thing["thingName"] for thing in page.get("things", [])]
        token = page.get("nextToken")
        if not token:
            return sorted(found)
