"""Which things a job's targets cover, read from moto's registry (thing and group ARNs)."""

from __future__ import annotations

from typing import Any

from moto.utilities.utils import get_partition

__all__ = ["group_members", "resource_name", "target_things", "thing_arn"]


def resource_name(arn: str) -> str:
    """The last path element of an ARN: `...:thing/name` -> `name`."""
    return arn.rsplit(":", 1)[-1].split("/", 1)[-1]


def thing_arn(iot: Any, thing_name: str) -> str | None:
    """The ARN of a registered thing; moto keys things by ARN, so this is a lookup."""
    region = iot.region_name
    arn = f"arn:{get_partition(region)}:iot:{region}:{iot.account_id}:thing/{thing_name}"
    return arn if arn in iot.things else None


def group_members(iot: Any, group_name: str) -> list[str]:
    """Things in a group and, recursively, in its child groups."""
    names: list[str] = []
    for group in iot.thing_groups.values():
        if group.thing_group_name == group_name:
            names.extend(thing.thing_name for thing in group.things.values())
        elif group.parent_group_name == group_name:
            names.extend(group_members(iot, group.thing_group_name))
    return names


def target_things(iot: Any, targets: list[str]) -> list[str]:
    """Thing names a job's targets cover now, in target order, without repeats."""
    names: list[str] = []
    for arn in targets:
        name = resource_name(arn)
        if ":thinggroup/" in arn:
            names.extend(group_members(iot, name))
        elif thing_arn(iot, name) is not None:
            names.append(name)
    return list(dict.fromkeys(names))
