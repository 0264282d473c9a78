"""Topic filters as routing conditions over the application properties the relay stamps."""

from __future__ import annotations

from bridge.mapping.topics import TOPIC_LEVEL_PROPERTY_PREFIX, TOPIC_PROPERTY, topic_level_property
from bridge.plan.rules.models import Finding, FindingCode, RouteSource
from bridge.plan.rules.routing import (
    TRUE,
    Compare,
    Const,
    Func,
    Prop,
    RouteExpr,
    all_of,
    any_of,
    negate,
)

__all__ = [
    "TOPIC_LEVEL_PROPERTY_PREFIX",
    "TOPIC_PROPERTY",
    "topic_condition",
    "topic_level_property",
    "topic_source",
]


def topic_source(topic_filter: str) -> tuple[RouteSource | None, Finding | None]:
    """Which routing source a filter's messages arrive on, with a finding for reserved topics."""
    levels = topic_filter.split("/")
    if levels[0] != "$aws":
        return RouteSource.DEVICE_MESSAGES, None
    area = levels[1:3]
    if area[:1] == ["things"] and "shadow" in levels:
        return RouteSource.TWIN_CHANGE_EVENTS, Finding(
            code=FindingCode.SHADOW_TOPIC,
            message=f"{topic_filter!r} is a device shadow topic; shadows become device twins, "
            "whose changes arrive as twin change events with a different document shape",
            suggestion="route source TwinChangeEvents and rewrite the condition over "
            "$body.properties.reported / desired by hand",
        )
    if area == ["events", "presence"]:
        return RouteSource.DEVICE_CONNECTION_STATE_EVENTS, Finding(
            code=FindingCode.PRESENCE_TOPIC,
            message=f"{topic_filter!r} is an AWS presence event; IoT Hub reports connections "
            "as connection state events with a different body",
            suggestion="route source DeviceConnectionStateEvents (or Event Grid "
            "DeviceConnected/DeviceDisconnected) and adapt consumers to its schema",
        )
    if area[:1] == ["events"]:
        return RouteSource.DEVICE_LIFECYCLE_EVENTS, Finding(
            code=FindingCode.LIFECYCLE_TOPIC,
            message=f"{topic_filter!r} is an AWS registry event; IoT Hub reports identity "
            "changes as device lifecycle events with a different body",
            suggestion="route source DeviceLifecycleEvents; thing groups and types have no "
            "IoT Hub lifecycle event",
        )
    return None, Finding(
        code=FindingCode.RESERVED_TOPIC,
        message=f"{topic_filter!r} is an AWS reserved topic with no IoT Hub routing source",
        suggestion="needs a human: decide which Azure feature replaces it (jobs, rules, ...)",
    )


def topic_condition(topic_filter: str) -> tuple[RouteExpr, list[Finding]]:
    """Condition matching exactly the topics the MQTT filter matches, given the relay contract."""
    levels = topic_filter.split("/")
    if any("'" in level or "\\" in level for level in levels):
        finding = Finding(
            code=FindingCode.UNSUPPORTED_LITERAL,
            message=f"topic filter {topic_filter!r} contains a quote or backslash, which a "
            "routing query string literal cannot carry; superset: the route matches every topic",
            suggestion="rename the topic or filter in the consumer",
        )
        return TRUE, [finding]
    # MQTT: a filter whose first level is a wildcard never matches topics starting with '$'.
    reserved = (
        negate(Func("STARTS_WITH", (Prop(TOPIC_PROPERTY), Const("$"))))
        if levels[0] in {"+", "#"}
        else TRUE
    )
    if "+" not in levels and "#" not in levels:
        return Compare("=", Prop(TOPIC_PROPERTY), Const(topic_filter)), []
    if levels[-1] == "#" and "+" not in levels:
        prefix = "/".join(levels[:-1])
        if not prefix:
            return reserved, []
        # MQTT: 'a/#' also matches the parent topic 'a' itself.
        exact = Compare("=", Prop(TOPIC_PROPERTY), Const(prefix))
        below = Func("STARTS_WITH", (Prop(TOPIC_PROPERTY), Const(prefix + "/")))
        return any_of(exact, below), []
    return all_of(reserved, *_level_conditions(levels)), []


def _level_conditions(levels: list[str]) -> list[RouteExpr]:
    multi_level = levels[-1] == "#"
    fixed = levels[:-1] if multi_level else levels
    conditions: list[RouteExpr] = [
        Compare("=", Prop(topic_level_property(number)), Const(level))
        for number, level in enumerate(fixed, start=1)
        if level != "+"
    ]
    # A '+' as the deepest fixed level still needs that level to exist.
    if fixed and fixed[-1] == "+":
        conditions.append(Func("IS_DEFINED", (Prop(topic_level_property(len(fixed))),)))
    if not multi_level:
        deeper = Prop(topic_level_property(len(fixed) + 1))
        conditions.append(negate(Func("IS_DEFINED", (deeper,))))
    return conditions
