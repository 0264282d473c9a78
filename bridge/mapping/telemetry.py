"""Which telemetry topics the relay carries, and which topic level names the device.

Shared by `plan` (which records, per rule, its FROM filter and the level that names the
device) and the relay (which subscribes to those filters and resolves each message's
device from its topic). Levels are 1-based like AWS's `topic(n)`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "FROM_AZURE",
    "ORIGIN_PROPERTY",
    "TopicRoute",
    "default_device_level",
    "device_level_of",
    "parse_route",
    "resolve_device",
    "routes_from_plan",
    "topic_matches",
]

# The MQTT 5 user property the reverse path stamps on what it republishes on AWS: the relay
# subscribes to the same topics, and must never carry those messages back into Azure.
ORIGIN_PROPERTY = "iot-bridge-origin"
FROM_AZURE = "azure"

# Aliases that say a SELECT's `topic(n)` is the device, as in `topic(2) AS thingName`.
DEVICE_ALIASES = frozenset({"thing", "thingname", "thing_name", "device", "deviceid", "device_id"})


@dataclass(frozen=True, slots=True)
class TopicRoute:
    """An MQTT topic filter and the topic level (1-based) holding the device's name."""

    topic_filter: str
    device_level: int

    def __post_init__(self) -> None:
        if not self.topic_filter or self.device_level < 1:
            raise ValueError(f"invalid relay topic {self.topic_filter!r}={self.device_level}")
        levels = self.topic_filter.split("/")
        if "#" in levels[:-1] or any(("+" in lv or "#" in lv) and len(lv) > 1 for lv in levels):
            raise ValueError(f"invalid MQTT topic filter {self.topic_filter!r}")


def parse_route(text: str) -> TopicRoute:
    """`dt/+/telemetry/#=2` -> TopicRoute('dt/+/telemetry/#', 2); ValueError when malformed."""
    topic_filter, sep, level = text.rpartition("=")
    if not sep or not level.strip().isdigit():
        raise ValueError(f"relay topic {text!r} is not 'filter=device-level' (e.g. dt/+/#=2)")
    return TopicRoute(topic_filter.strip(), int(level))


def topic_matches(topic_filter: str, topic: str) -> bool:
    """MQTT matching of `topic` against `topic_filter` (`+` one level, `#` the rest)."""
    if topic.startswith("$") and topic_filter[:1] in {"+", "#"}:
        return False  # MQTT: wildcards at the first level never match '$' topics
    filters, levels = topic_filter.split("/"), topic.split("/")
    for index, part in enumerate(filters):
        if part == "#":
            return True
        if index >= len(levels) or (part not in {"+", levels[index]}):
            return False
    return len(filters) == len(levels)


def resolve_device(routes: Iterable[TopicRoute], topic: str) -> str | None:
    """The device named by the first route whose filter matches; None when none names one.

    Never a guess: a matching route whose device level is missing or empty in the topic
    resolves to None, not to a neighbouring level.
    """
    levels = topic.split("/")
    for route in routes:
        if topic_matches(route.topic_filter, topic):
            if route.device_level <= len(levels) and levels[route.device_level - 1]:
                return levels[route.device_level - 1]
            return None
    return None


def default_device_level(topic_filter: str) -> int | None:
    """The level of the filter's only single-level wildcard (`dt/+/telemetry` -> 2), else None."""
    plus = [number for number, part in enumerate(topic_filter.split("/"), start=1) if part == "+"]
    return plus[0] if len(plus) == 1 else None


def device_level_of(topic_filter: str, topic_calls: Sequence[tuple[int, str | None]]) -> int | None:
    """The device level of a rule: a `topic(n)` the SELECT names as the device, else the
    filter's only `+`.

    Args:
        topic_filter: The rule's FROM filter.
        topic_calls: (n, alias) of every `topic(n)` in the SELECT list.
    """
    for level, alias in topic_calls:
        if alias is not None and alias.lower() in DEVICE_ALIASES:
            return level
    return default_device_level(topic_filter)


def routes_from_plan(plan: Mapping[str, Any]) -> list[TopicRoute]:
    """The relay routes of a migration plan's rules: enabled, device messages, level known.

    Rules on reserved topics (`$aws/...`) are not telemetry; rules whose device level the
    plan could not find are skipped (set BRIDGE_RELAY__TOPICS for them).
    """
    routes: dict[str, TopicRoute] = {}
    for rule in plan.get("rules", []):
        topic_filter, level = rule.get("topic_filter"), rule.get("device_level")
        if not rule.get("enabled", True) or not topic_filter or not level:
            continue
        if rule.get("source") not in {None, "DeviceMessages"}:
            continue
        routes.setdefault(topic_filter, TopicRoute(topic_filter, int(level)))
    return list(routes.values())
