"""AWS IoT's event configurations: which registry events AWS publishes at all.

AWS publishes registry events only for the types enabled with UpdateEventConfigurations,
and a new account has them all off. The mirror lives on these events; without them it
would only see changes at each anti-entropy pass, so the daemon checks them at start and
discover records them in the inventory.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

__all__ = [
    "MIRROR_EVENT_TYPES",
    "disabled",
    "enable_command",
    "enable_events",
    "read_event_configurations",
]

# The registry events the mirror's codec folds in (bridge.aws.codec's subscriptions).
MIRROR_EVENT_TYPES = (
    "THING",
    "THING_GROUP",
    "THING_GROUP_MEMBERSHIP",
    "THING_GROUP_HIERARCHY",
    "THING_TYPE_ASSOCIATION",
)


class _Api(Protocol):
    async def call(self, operation: str, **kwargs: Any) -> dict[str, Any]: ...


async def read_event_configurations(iot: _Api) -> dict[str, bool]:
    """Event type -> whether AWS publishes it."""
    answer = await iot.call("describe_event_configurations")
    return {
        str(name): bool((setting or {}).get("Enabled"))
        for name, setting in (answer.get("eventConfigurations") or {}).items()
    }


def disabled(
    configurations: Mapping[str, bool], wanted: Iterable[str] = MIRROR_EVENT_TYPES
) -> list[str]:
    """The wanted event types that are off (or unknown to the account)."""
    return [name for name in wanted if not configurations.get(name, False)]


async def enable_events(iot: _Api, types: Iterable[str]) -> None:
    """Turn the given event types on (UpdateEventConfigurations; other types unchanged)."""
    settings = {name: {"Enabled": True} for name in types}
    if settings:
        await iot.call("update_event_configurations", eventConfigurations=settings)


def enable_command(types: Iterable[str]) -> str:
    """The AWS CLI command an operator runs to turn `types` on."""
    settings = ",".join(f'"{name}":{{"Enabled":true}}' for name in types)
    return f"aws iot update-event-configurations --event-configurations '{{{settings}}}'"
