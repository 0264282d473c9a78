"""Event configurations: which `$aws/events/...` topics AWS IoT publishes at all.

AWS publishes registry and job events only for the event types enabled with
UpdateEventConfigurations (developer guide, "Event configurations"); a new account has
every type off. Lifecycle events (presence, subscriptions) are not governed by it. moto
has neither call, so the stand-in answers both here and gates every `$aws/events/` topic
the glue publishes. `AwsStandIn(registry_events=True)` starts as an account whose operator
already enabled the registry types, which most tests and the rehearsal want.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from moto.core.responses import ActionResult
from moto.iot.exceptions import InvalidRequestException
from moto.iot.responses import IoTResponse

__all__ = ["EVENT_TYPES", "REGISTRY_EVENT_TYPES", "EventConfigurations"]

Publish = Callable[[str, bytes], None]

EVENT_TYPES = (
    "THING",
    "THING_GROUP",
    "THING_TYPE",
    "THING_GROUP_MEMBERSHIP",
    "THING_GROUP_HIERARCHY",
    "THING_TYPE_ASSOCIATION",
    "JOB",
    "JOB_EXECUTION",
    "POLICY",
    "CERTIFICATE",
    "CA_CERTIFICATE",
)
REGISTRY_EVENT_TYPES = EVENT_TYPES[:6]
# The second topic level of each governed event topic, and the type that governs it.
_TOPIC_TYPES = {
    "thing": "THING",
    "thingGroup": "THING_GROUP",
    "thingType": "THING_TYPE",
    "thingGroupMembership": "THING_GROUP_MEMBERSHIP",
    "thingGroupHierarchy": "THING_GROUP_HIERARCHY",
    "thingTypeAssociation": "THING_TYPE_ASSOCIATION",
    "job": "JOB",
    "jobExecution": "JOB_EXECUTION",
    "policy": "POLICY",
    "certificate": "CERTIFICATE",
    "caCertificate": "CA_CERTIFICATE",
}


class EventConfigurations:
    """The account's event configuration, its two API calls and the publish gate."""

    def __init__(self, enabled: Iterable[str] = ()) -> None:
        wanted = set(enabled)
        unknown = wanted - set(EVENT_TYPES)
        if unknown:
            raise ValueError(f"unknown event types: {sorted(unknown)}")
        self._enabled = {name: name in wanted for name in EVENT_TYPES}
        self._lock = threading.Lock()
        self.created = self.modified = time.time()
        self._patched: dict[str, Any] = {}

    def enabled(self, event_type: str) -> bool:
        """Whether AWS publishes events of this type."""
        with self._lock:
            return self._enabled[event_type]

    def describe(self) -> dict[str, Any]:
        """DescribeEventConfigurations' answer."""
        with self._lock:
            configurations = {name: {"Enabled": on} for name, on in self._enabled.items()}
        return {
            "eventConfigurations": configurations,
            "creationDate": self.created,
            "lastModifiedDate": self.modified,
        }

    def update(self, configurations: Mapping[str, Any]) -> None:
        """UpdateEventConfigurations: the types given change, the others stay."""
        if not isinstance(configurations, Mapping):
            raise InvalidRequestException("eventConfigurations must be a map")
        changes: dict[str, bool] = {}
        for name, setting in configurations.items():
            if name not in self._enabled:
                raise InvalidRequestException(f"{name} is not an event type")
            if not isinstance(setting, Mapping) or not isinstance(setting.get("Enabled"), bool):
                raise InvalidRequestException(f"{name} needs {{'Enabled': true|false}}")
            changes[name] = setting["Enabled"]
        with self._lock:
            self._enabled.update(changes)
            self.modified = time.time()

    def allows(self, topic: str) -> bool:
        """Whether a message on `topic` is published (non-event topics always are)."""
        parts = topic.split("/")
        if len(parts) < 3 or parts[:2] != ["$aws", "events"]:
            return True
        governing = _TOPIC_TYPES.get(parts[2])
        return governing is None or self.enabled(governing)

    def gate(self, publish: Publish) -> Publish:
        """`publish`, dropping the events of types that are off."""

        def gated(topic: str, payload: bytes) -> None:
            if self.allows(topic):
                publish(topic, payload)

        return gated

    def install(self) -> None:
        """Answer both calls on moto's IoT endpoint (a class attribute: one stand-in a process)."""
        configuration = self

        def describe_event_configurations(_response: Any) -> ActionResult:
            return ActionResult(configuration.describe())

        def update_event_configurations(response: Any) -> ActionResult:
            configuration.update(response._get_param("eventConfigurations") or {})
            return ActionResult({})

        for name, handler in (
            ("describe_event_configurations", describe_event_configurations),
            ("update_event_configurations", update_event_configurations),
        ):
            self._patched[name] = getattr(IoTResponse, name, None)
            setattr(IoTResponse, name, handler)

    def uninstall(self) -> None:
        """Give moto its own (missing) handlers back."""
        for name, original in self._patched.items():
            if original is None:
                delattr(IoTResponse, name)
            else:
                setattr(IoTResponse, name, original)
        self._patched.clear()
