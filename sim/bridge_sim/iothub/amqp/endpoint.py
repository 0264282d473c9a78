"""`DeviceAmqpEndpoint`: IoT Hub's device-facing AMQP 1.0 endpoint over TLS (port 5671).

What Microsoft's C, .NET and Node device SDKs and its protocol gateway speak: one TLS
connection (SASL ANONYMOUS, no SASL at all as the Node SDK does, or SASL PLAIN with
`{id}@sas.{hub}` and a SAS token), then per identity a CBS put-token and a sender link to
its `messages/events` node, so one connection may carry many devices and modules. Every
message goes into the same event log, quotas, throttles and fault switches as the MQTT
endpoint's, with the same `iothub-connection-*` annotations.

- Faults (`FaultInjector`, endpoint "amqp"): route "connect" closes the connection after
  OPEN with the rule's condition; "cbs" answers put-token with the rule's status; "attach"
  refuses a telemetry link; "telemetry" rejects a message (401/403 ->
  amqp:unauthorized-access, 404 -> amqp:not-found, 429 -> amqp:resource-limit-exceeded,
  otherwise amqp:internal-error). `latency` delays each message; `drop`/`drop_all` cut
  connections.
- Throttles: authorizing a new identity on a connection spends a new-connection token
  (put-token answers 429 over it); a message waits for a D2C token and is rejected with
  amqp:resource-limit-exceeded after `Limits.max_throttle_wait`.
- Deleting, disabling or re-keying an identity, or its token lapsing, detaches its links
  with amqp:unauthorized-access. An identity is reported connected (connection-state
  event, registry) while it has a telemetry link.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import uuid
from collections import Counter
from typing import TYPE_CHECKING, Any, Self

from bridge.logging import get_logger
from bridge_sim.errors import SimulatorError
from bridge_sim.iothub.amqp.connection import DeviceAmqpConnection
from bridge_sim.iothub.amqp.links import METHOD_NAME_PROPERTY
from bridge_sim.iothub.errors import IoTHubError
from bridge_sim.iothub.eventhub import codec
from bridge_sim.iothub.eventhub.connection import EndpointContext
from bridge_sim.iothub.faults import FaultInjector
from bridge_sim.iothub.mqtt.state import HubState, Limits
from bridge_sim.iothub.quotas import Quotas

if TYPE_CHECKING:
    from types import TracebackType

    from bridge_sim.iothub.eventhub.log import EventLog
    from bridge_sim.iothub.registry import Registry

__all__ = ["AMQPS_PORT", "DeviceAmqpEndpoint"]

AMQPS_PORT = 5671
_log = get_logger("sim.iothub.amqp")
IdentityKey = tuple[str, str | None]


class DeviceAmqpEndpoint:
    """Serves devices and modules over AMQP 1.0/TLS on `host:port` until exited."""

    def __init__(
        self,
        *,
        registry: Registry,
        events: EventLog,
        ssl_context: ssl.SSLContext,
        host: str = "127.0.0.1",
        port: int = AMQPS_PORT,
        quotas: Quotas | None = None,
        faults: FaultInjector | None = None,
        limits: Limits | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.hub_hostname = registry.host_name
        self.hub = HubState(
            registry=registry,
            events=events,
            quotas=quotas or Quotas(None),
            faults=faults or FaultInjector(),
            limits=limits or Limits(),
        )
        self._context = EndpointContext(
            log=events,
            hub_name=registry.hub_name,
            shared_access_keys={},
            consumer_groups=frozenset(),
            container_id=f"{registry.hub_name}-devices-{uuid.uuid4().hex[:8]}",
        )
        self._ssl_context = ssl_context
        self._server: asyncio.Server | None = None
        self._connections: set[DeviceAmqpConnection] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._links: Counter[IdentityKey] = Counter()
        self._remove_listener: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def registry(self) -> Registry:
        return self.hub.registry

    @property
    def connection_count(self) -> int:
        """AMQP connections open now (each may carry many identities)."""
        return len(self._connections)

    def linked(self, device_id: str, module_id: str | None = None) -> int:
        """Telemetry links the identity has open now, across connections."""
        return self._links[(device_id, module_id)]

    # -- lifecycle -----------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        self._loop = asyncio.get_running_loop()
        try:
            self._server = await asyncio.start_server(
                self._accept, self.host, self.port, ssl=self._ssl_context
            )
        except OSError as error:
            raise SimulatorError(
                f"cannot serve IoT Hub AMQP on {self.host}:{self.port}: {error}"
            ) from error
        self._remove_listener = self.registry.add_identity_listener(self._identity_changed)
        _log.info("sim.iothub.amqp_serving", host=self.host, port=self.port)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._remove_listener is not None:
            self._remove_listener()
            self._remove_listener = None
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for connection in list(self._connections):
            connection.abort()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if server is not None:
            await server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connection = DeviceAmqpConnection(reader, writer, self._context, self)
        task = asyncio.current_task()
        self._connections.add(connection)
        if task is not None:
            self._tasks.add(task)
        try:
            await connection.serve()
        except asyncio.CancelledError:
            # The endpoint is stopping; end quietly (asyncio logs a cancelled handler).
            connection.abort()
        finally:
            self._connections.discard(connection)
            if task is not None:
                self._tasks.discard(task)

    # -- faults --------------------------------------------------------------------------

    def drop(self, device_id: str, module_id: str | None = None) -> bool:
        """Fault: cut every connection carrying the identity; True if there was one."""
        hit = [c for c in self._connections if (device_id, module_id) in c.grants]
        self._on_loop(lambda: _abort(hit))
        return bool(hit)

    def drop_all(self) -> int:
        """Fault: cut every connection; returns how many there were."""
        connections = list(self._connections)
        self._on_loop(lambda: _abort(connections))
        return len(connections)

    def _on_loop(self, action: Any) -> None:
        loop = self._loop
        if loop is None:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            action()
        else:
            loop.call_soon_threadsafe(action)

    # -- cloud-to-device -----------------------------------------------------------------

    def methods_ready(self, device_id: str, module_id: str | None = None) -> bool:
        """Whether the identity has a direct-method link open here."""
        return any(c.links.method_link((device_id, module_id)) for c in self._connections)

    async def invoke_method(
        self, device_id: str, module_id: str | None, request: dict[str, Any]
    ) -> tuple[int, Any]:
        """Call a direct method over the identity's method link; (status, payload)."""
        loop = self._loop
        if loop is not None and loop is not asyncio.get_running_loop():
            future = asyncio.run_coroutine_threadsafe(
                self.invoke_method(device_id, module_id, request), loop
            )
            return await asyncio.wrap_future(future)
        found = [
            (connection, linked)
            for connection in list(self._connections)
            if (linked := connection.links.method_link((device_id, module_id))) is not None
        ]
        if not found:
            raise IoTHubError(
                404, "DeviceNotOnline", f"Timed out waiting for device {device_id} to connect"
            )
        connection, (session, link) = found[0]
        name = request.get("methodName")
        if not isinstance(name, str) or not name:
            raise IoTHubError.argument_invalid("methodName is required")
        request_id = str(uuid.uuid4())
        waiter: asyncio.Future[tuple[int, Any]] = asyncio.get_running_loop().create_future()
        self.hub.pending_methods[request_id] = waiter
        payload = codec.encode_message(
            codec.Message(
                data=[json.dumps(request.get("payload")).encode()],
                properties=codec.Properties(correlation_id=request_id),
                application_properties={METHOD_NAME_PROPERTY: name},
            )
        )
        try:
            connection.links.send_c2d(session, link, payload)
            await connection.drain()
            async with asyncio.timeout(float(request.get("responseTimeoutInSeconds") or 30)):
                return await waiter
        except TimeoutError as error:
            raise IoTHubError(
                504,
                "GatewayTimeoutException",
                f"Timed out waiting for the response from {device_id}",
            ) from error
        finally:
            self.hub.pending_methods.pop(request_id, None)

    def desired_subscribed(self, device_id: str, module_id: str | None = None) -> bool:
        """Whether the identity asked for desired patches on a twin link here."""
        key = (device_id, module_id)
        return any(c.links.desired_subscribed(key) for c in self._connections)

    def c2d_ready(self, device_id: str) -> bool:
        """Whether the device has a C2D receiver link open here."""
        return any(c.links.c2d_link(device_id) for c in self._connections)

    async def send_c2d(
        self, device_id: str, body: bytes | str, properties: dict[str, str] | None = None
    ) -> str:
        """Deliver a C2D message on the device's receiver link; returns its message id."""
        loop = self._loop
        if loop is not None and loop is not asyncio.get_running_loop():
            future = asyncio.run_coroutine_threadsafe(
                self.send_c2d(device_id, body, properties), loop
            )
            return await asyncio.wrap_future(future)
        message_id = str(uuid.uuid4())
        payload = codec.encode_message(
            codec.Message(
                data=[body.encode() if isinstance(body, str) else body],
                properties=codec.Properties(
                    message_id=message_id, to=f"/devices/{device_id}/messages/devicebound"
                ),
                application_properties=dict(properties or {}),
            )
        )
        for connection in list(self._connections):
            found = connection.links.c2d_link(device_id)
            if found is not None:
                connection.links.send_c2d(*found, payload)
                await connection.drain()
                return message_id
        raise IoTHubError(
            404, "DeviceNotOnline", f"Device {device_id} has no cloud-to-device link open"
        )

    # -- identities ----------------------------------------------------------------------

    def link_opened(self, key: IdentityKey) -> None:
        self._links[key] += 1
        if self._links[key] == 1:
            self._record_state(key, connected=True)

    def link_closed(self, key: IdentityKey) -> None:
        self._links[key] -= 1
        if self._links[key] <= 0:
            del self._links[key]
            self._record_state(key, connected=False)

    def _record_state(self, key: IdentityKey, *, connected: bool) -> None:
        device_id, module_id = key
        with contextlib.suppress(IoTHubError):
            self.registry.set_connection_state(device_id, connected, module_id)
        self.hub.events.append_connection_state(device_id, module_id, connected)

    def _identity_changed(self, event: str, device_id: str, module_id: str | None) -> None:
        # Runs on the registry writer's thread, under its lock: hand off to our loop.
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._revoke_if_invalid, event, device_id, module_id)

    def _revoke_if_invalid(self, event: str, device_id: str, module_id: str | None) -> None:
        for connection in list(self._connections):
            for key, auth in list(connection.grants.items()):
                if key[0] != device_id or (module_id is not None and key[1] != module_id):
                    continue
                identity = self.registry.find(*key)
                still_valid = (
                    event != "deleted"
                    and identity is not None
                    and self.registry.device_enabled(device_id)
                    and identity.authentication == auth.authentication
                )
                if not still_valid:
                    connection.revoke(key, f"identity {event}")


def _abort(connections: list[DeviceAmqpConnection]) -> None:
    for connection in connections:
        connection.abort()
