"""Thing-group hierarchy: paths from the root, and which groups a change reaches."""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["descendants", "group_path", "group_paths"]

_MAX_DEPTH = 64  # AWS allows 7 levels; the bound only guards against a cycle in bad data


def group_path(group: str, parents: Mapping[str, str | None]) -> str:
    """`root/.../group`, like the console's `USA/New York`; unknown parents end the walk."""
    names = [group]
    parent = parents.get(group)
    while parent is not None and parent not in names and len(names) < _MAX_DEPTH:
        names.append(parent)
        parent = parents.get(parent)
    return "/".join(reversed(names))


def group_paths(groups: frozenset[str], parents: Mapping[str, str | None]) -> dict[str, str]:
    """The path of each of `groups`."""
    return {group: group_path(group, parents) for group in groups}


def descendants(group: str, parents: Mapping[str, str | None]) -> set[str]:
    """`group` and every group below it."""
    children: dict[str, list[str]] = {}
    for child, parent in parents.items():
        if parent is not None:
            children.setdefault(parent, []).append(child)
    found = {group}
    todo = [group]
    while todo:
        for child in children.get(todo.pop(), ()):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found
