"""Which AWS topic a cut-over device's own message goes back to.

The message's `awsTopic` application property when it has one (the relay stamps it, and
patched firmware sets it on what it sends after cutover, `bridge.mapping.topics`), else a
template per thing type (`{device}` is the thing name), else the default template.
"""

from __future__ import annotations

from collections.abc import Mapping

from bridge.mapping.topics import TOPIC_PROPERTY

__all__ = ["TopicTemplates", "aws_topic"]


class TopicTemplates:
    """The configured templates: per thing type, and a default."""

    def __init__(self, default: str | None, by_thing_type: Mapping[str, str]) -> None:
        for template in [default or "", *by_thing_type.values()]:
            _check(template)
        self.default = default
        self.by_thing_type = dict(by_thing_type)

    def topic(self, device_id: str, thing_type: str | None) -> str | None:
        """The topic for this device from its template, or None without one."""
        template = self.by_thing_type.get(thing_type or "", self.default)
        return template.replace("{device}", device_id) if template else None


def aws_topic(
    device_id: str,
    properties: Mapping[str, str],
    thing_type: str | None,
    templates: TopicTemplates,
) -> str | None:
    """The AWS topic to republish on, or None when nothing tells."""
    stamped = properties.get(TOPIC_PROPERTY)
    if stamped:
        return stamped
    return templates.topic(device_id, thing_type)


def _check(template: str) -> None:
    if "+" in template or "#" in template:
        raise ValueError(f"topic template {template!r} has MQTT wildcards")
    if template.startswith("$"):
        raise ValueError(f"topic template {template!r} names a reserved topic")
