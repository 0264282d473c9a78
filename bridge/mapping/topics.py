"""The application properties that carry a message's original AWS topic into IoT Hub.

The relay stamps them on every message it forwards and patched firmware stamps them on
every message it sends after cutover, so the routes the plan translates from AWS rules
match the same messages before and after a device moves.
"""

from __future__ import annotations

__all__ = [
    "TOPIC_LEVEL_PROPERTY_PREFIX",
    "TOPIC_PROPERTY",
    "topic_level_property",
    "topic_properties",
]

# Every relayed message carries its original MQTT topic in `awsTopic` and each level in
# `awsTopic1`..`awsTopicN` (1-based like AWS's topic(n)), empty levels as ''. Plain
# identifiers because routing queries name application properties bare, and IoT Hub
# property names are case-insensitive, so these must stay unique ignoring case.
TOPIC_PROPERTY = "awsTopic"
TOPIC_LEVEL_PROPERTY_PREFIX = "awsTopic"


def topic_level_property(level: int) -> str:
    """Name of the application property holding topic level `level` (1-based)."""
    return f"{TOPIC_LEVEL_PROPERTY_PREFIX}{level}"


def topic_properties(topic: str) -> dict[str, str]:
    """Every topic property for a message published on `topic`."""
    properties = {TOPIC_PROPERTY: topic}
    for level, name in enumerate(topic.split("/"), start=1):
        properties[topic_level_property(level)] = name
    return properties
