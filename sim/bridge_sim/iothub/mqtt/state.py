"""What every device connection of one endpoint shares: registry, event log, limits, faults."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bridge_sim.iothub.errors import IoTHubError
from bridge_sim.iothub.eventhub.log import EventLog
from bridge_sim.iothub.faults import FaultInjector
from bridge_sim.iothub.quotas import Operation, Quotas
from bridge_sim.iothub.registry import Registry

if TYPE_CHECKING:
    from bridge_sim.iothub.mqtt.auth import AuthResult

__all__ = ["ENDPOINT_NAME", "HubState", "Limits", "ProtocolViolationError", "ThrottledError"]

# The endpoint name fault rules and request stats use for the device MQTT endpoint.
ENDPOINT_NAME = "mqtt"


class ProtocolViolationError(Exception):
    """The device did something IoT Hub answers by closing the connection."""


class ThrottledError(Exception):
    """An operation stayed over its throttle for longer than the endpoint waits."""


@dataclass(frozen=True)
class Limits:
    """IoT Hub's per-message and per-connection limits (overridable for tests)."""

    max_message_bytes: int = 256 * 1024
    # Topic, property bag and MQTT framing on top of the largest legal message.
    max_packet_bytes: int = 256 * 1024 + 65_536
    # IoT Hub caps the keep-alive at 1177 s and closes after 1.5 times the interval.
    max_keepalive: int = 1177
    connect_timeout: float = 10.0
    # How long a D2C send may wait for throttle tokens before the connection is closed.
    max_throttle_wait: float = 10.0


@dataclass
class HubState:
    """The shared state plus pending direct-method calls, keyed by request id."""

    registry: Registry
    events: EventLog
    quotas: Quotas
    faults: FaultInjector
    limits: Limits
    pending_methods: dict[str, asyncio.Future[tuple[int, Any]]] = field(default_factory=dict)
    _request_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    # The hub's message routing (`routing.MessageRouter.append`); None: all to `events`.
    route: Callable[..., object] | None = None

    def append_telemetry(self, **fields: Any) -> None:
        """Hand a device message to routing, or straight to the built-in endpoint."""
        (self.route or self.events.append)(**fields)

    def registry_activity(self, auth: AuthResult) -> None:
        """Stamp `lastActivityTime`; an identity deleted meanwhile is no error here."""
        with contextlib.suppress(IoTHubError):
            self.registry.record_activity(auth.device_id, auth.module_id)

    def new_request_id(self) -> str:
        return format(next(self._request_ids), "x")

    def resolve_method(self, request_id: str, status: int, payload: Any) -> bool:
        """Hand a device's method reply to the waiting caller; False if none waits."""
        future = self.pending_methods.pop(request_id, None)
        if future is None or future.done():
            return False
        future.set_result((status, payload))
        return True

    async def acquire(self, operation: Operation) -> None:
        """Wait for a throttle token, pacing the caller; ThrottledError past the limit."""
        if self.quotas.try_acquire(operation):
            return
        rate = self.quotas.rate(operation)
        pace = 1.0 / rate.per_second if rate is not None and rate.per_second > 0 else 0.01
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.limits.max_throttle_wait
        while not self.quotas.try_acquire(operation):
            if loop.time() >= deadline:
                raise ThrottledError(f"{operation.value} throttled")
            await asyncio.sleep(min(max(pace, 0.001), 0.1))
