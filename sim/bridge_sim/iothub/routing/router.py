"""The hub's message routing: each device message to the endpoints whose routes take it.

Without routes the router hands every message to the built-in `events` endpoint, as the
emulator always did. With routes (see `config`), a device message goes once to each
endpoint named by an enabled `DeviceMessages` route whose condition is true for it, and to
`events` through the fallback route when none is (and the fallback is enabled). Custom
Event Hubs are served by the Event Hubs-compatible listener under their own names,
storage containers are written to Azurite (`storage`), Service Bus queues and topics are
kept in memory (`service_bus`). Other sources (connection state, twin changes) still go to
`events` as before: routing them is not emulated.
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from collections.abc import MutableMapping
from typing import Any, Self

from bridge.logging import get_logger
from bridge_sim.iothub.errors import IoTHubError
from bridge_sim.iothub.eventhub.log import EventLog
from bridge_sim.iothub.registry import Registry
from bridge_sim.iothub.routing.config import BUILTIN_ENDPOINT, RoutingConfig, RoutingConfigError
from bridge_sim.iothub.routing.evaluate import matches
from bridge_sim.iothub.routing.storage import StorageSink, blob_record
from bridge_sim.iothub.routing.values import RoutedMessage

__all__ = ["MessageRouter"]

_log = get_logger("sim.iothub.routing")


class MessageRouter:
    """Routes device messages; `configure` swaps the routes and endpoints at any time.

    Args:
        events: The built-in endpoint's log.
        registry: Where `$twin` conditions read the sender's twin.
        entities: The Event Hubs listener's entity table; custom Event Hubs are added to it.
        storage_connection_string: Azurite, for storage container endpoints.
        storage_batch_seconds: How long records wait before they are appended to blobs.
    """

    def __init__(
        self,
        *,
        events: EventLog,
        registry: Registry,
        entities: MutableMapping[str, EventLog],
        storage_connection_string: str | None = None,
        storage_batch_seconds: float = 0.5,
    ) -> None:
        self.events = events
        self.registry = registry
        self.entities = entities
        self.config = RoutingConfig()
        self.storage_connection_string = storage_connection_string
        self.storage_batch_seconds = storage_batch_seconds
        self.storage: StorageSink | None = None
        self.service_bus: dict[str, list[dict[str, Any]]] = {}
        self.delivered: Counter[str] = Counter()
        self._custom_hubs: dict[str, EventLog] = {}
        self._stack = contextlib.AsyncExitStack()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._stack.aclose()

    async def configure(self, config: RoutingConfig) -> None:
        """Use these routes and endpoints from now on; messages already routed stay put."""
        if any(e.type == "StorageContainer" for e in config.endpoints):
            if self.storage_connection_string is None:
                raise RoutingConfigError("storage container endpoints need Azurite")
            if self.storage is None:
                self.storage = await self._stack.enter_async_context(
                    StorageSink(
                        connection_string=self.storage_connection_string,
                        hub_name=self.events.hub_name,
                        batch_seconds=self.storage_batch_seconds,
                    )
                )
        for endpoint in config.endpoints:
            if endpoint.type == "EventHub":
                key = endpoint.target.lower()
                if key == self.events.hub_name.lower():
                    raise RoutingConfigError(
                        f"endpoint {endpoint.name!r}: event hub {endpoint.target!r} is the "
                        "built-in endpoint's name"
                    )
                log = self._custom_hubs.setdefault(
                    key,
                    EventLog(partition_count=self.events.partition_count, hub_name=endpoint.target),
                )
                self.entities[key] = log
            elif endpoint.type.startswith("ServiceBus"):
                self.service_bus.setdefault(endpoint.target, [])
        self.config = config
        _log.info(
            "sim.iothub.routing_configured",
            routes=len(config.routes),
            endpoints=len(config.endpoints),
            fallback=config.fallback,
        )

    async def flush(self) -> None:
        """Write what storage endpoints hold back, so a reader sees every routed message."""
        if self.storage is not None:
            await self.storage.flush()

    def event_hub(self, name: str) -> EventLog:
        """A custom Event Hub's log, by its entity name."""
        return self._custom_hubs[name.lower()]

    def endpoints_for(self, message: RoutedMessage) -> list[str]:
        """The endpoint names a device message goes to, each once, in route order."""
        names: list[str] = []
        for route in self.config.routes:
            if (
                route.enabled
                and route.source == "DeviceMessages"
                and matches(route.parsed, message)
            ):
                names.extend(n for n in route.endpoint_names if n not in names)
        if not names and self.config.fallback:
            names.append(BUILTIN_ENDPOINT)
        return names

    def append(self, **fields: Any) -> None:
        """Take one device message, as `EventLog.append` takes it, and deliver it."""
        if not self.config.routes:
            self.events.append(**fields)
            self.delivered[BUILTIN_ENDPOINT] += 1
            return
        message = RoutedMessage(
            body=bytes(fields["body"]),
            device_id=fields["device_id"],
            module_id=fields.get("module_id"),
            properties=dict(fields.get("properties") or {}),
            content_type=fields.get("content_type"),
            content_encoding=fields.get("content_encoding"),
            message_id=fields.get("message_id"),
            correlation_id=fields.get("correlation_id"),
            user_id=fields.get("user_id"),
            enqueued_time_ms=int(time.time() * 1000),
            twin=lambda: self._twin(fields["device_id"], fields.get("module_id")),
        )
        endpoints = {endpoint.name.lower(): endpoint for endpoint in self.config.endpoints}
        for name in self.endpoints_for(message):
            self.delivered[name] += 1
            endpoint = endpoints.get(name.lower())
            if endpoint is None:
                self.events.append(**fields)
            elif endpoint.type == "EventHub":
                self.event_hub(endpoint.target).append(**fields)
            elif endpoint.type == "StorageContainer":
                assert self.storage is not None
                partition = self.events.partition_for(message.device_id)
                self.storage.add(
                    endpoint.target, partition, message, fields.get("extra_annotations") or {}
                )
            else:
                record = blob_record(message, fields.get("extra_annotations") or {})
                self.service_bus[endpoint.target].append(record)

    def _twin(self, device_id: str, module_id: str | None) -> dict[str, Any] | None:
        try:
            return self.registry.twin(device_id, module_id)
        except IoTHubError:
            return None
