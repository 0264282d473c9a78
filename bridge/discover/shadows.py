"""Shadows for the inventory: read one by one (GetThingShadow) or taken from the fleet index."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from bridge.errors import Gone
from bridge.inventory.models import Shadow

if TYPE_CHECKING:
    from bridge.discover.crawler import Context

__all__ = ["from_index", "named_shadow_names", "read_shadow"]


def _shadow(name: str | None, version: Any, state: dict[str, Any]) -> Shadow:
    """A Shadow from a document's version and state, whichever API gave them."""
    sections = {k: state[k] for k in ("desired", "reported") if k in state}
    return Shadow(
        name=name,
        version=version,
        desired=sections.get("desired"),
        reported=sections.get("reported"),
        size_bytes=len(json.dumps(sections, separators=(",", ":"))),
    )


async def read_shadow(ctx: Context, thing: str, name: str | None) -> Shadow | None:
    """One shadow through GetThingShadow; None when it does not exist or is unreadable."""
    kwargs = {"thingName": thing, **({"shadowName": name} if name else {})}
    try:
        answer = await ctx.data.call("get_thing_shadow", **kwargs)
    except Gone:
        return None
    raw = await answer["payload"].read()
    try:
        doc = json.loads(raw)
        return _shadow(name, doc["version"], doc.get("state", {}))
    except (ValueError, KeyError, AttributeError, TypeError):
        ctx.finding(
            "warning",
            "ShadowUnreadable",
            f"shadow {name or 'classic'} is not a shadow document",
            thing,
        )
        return None


async def named_shadow_names(ctx: Context, thing: str) -> list[str]:
    """Names of the thing's named shadows, every page."""
    names: list[str] = []
    token: str | None = None
    while True:
        kwargs: dict[str, Any] = {"thingName": thing, "pageSize": 100}
        if token:
            kwargs["nextToken"] = token
        page = await ctx.data.call("list_named_shadows_for_thing", **kwargs)
        names.extend(page.get("results", []))
        token = page.get("nextToken")
        if not token:
            return names


def from_index(document: str) -> dict[str | None, Shadow]:
    """The shadows in a fleet index result's `shadow` JSON: None is the classic shadow.

    The classic shadow is there when its `version` is (its state may be empty); named
    shadows are under `"name"`. Raises ValueError, KeyError or TypeError if malformed.
    """
    doc = json.loads(document)
    found: dict[str | None, Shadow] = {}
    if "version" in doc:
        found[None] = _shadow(None, doc["version"], doc)
    for name, named in (doc.get("name") or {}).items():
        found[name] = _shadow(name, named["version"], named)
    return found
