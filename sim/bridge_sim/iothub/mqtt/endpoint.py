"""`DeviceEndpoint`: IoT Hub's device-facing MQTT 3.1.1 endpoint over TLS.

ca = CertificateAuthority.create("emulator CA")
host = free_loopback_host()
server = ca.issue_server(host, "myhub.azure-devices.net")
async with DeviceEndpoint(registry=registry, events=log, host=host,
                          cert_pem=server.cert_pem, key_pem=server.key_pem) as endpoint:
    service_api.method_invoker = endpoint.invoke_method
    # devices connect with GatewayHostName=<host> and server_verification_cert=ca.cert_pem

Behaviour, following IoT Hub's MQTT documentation where it says something:

- One connection per identity: a new CONNECT for a connected identity drops the old one.
  Deleting, disabling or re-keying an identity drops its connection, and a SAS
  connection is dropped when its token expires.
- QoS 2 publishes, publishes outside the identity's topics, malformed packets, messages
  over 256 KB (body plus topic) and silence beyond 1.5 keep-alives close the connection.
  A SUBSCRIBE asking QoS 2 is granted QoS 1; an unsupported filter gets 0x80.
- RETAIN is not honoured: the message is forwarded with application property
  `mqtt-retain: true`.
- Over the D2C throttle a send's PUBACK (and the rest of that connection) waits for the
  bucket to refill; after `Limits.max_throttle_wait` seconds the connection is closed.
  Over the new-connection throttle CONNECT gets CONNACK 3; twin calls over theirs get 429.
- Faults (`FaultInjector`, endpoint "mqtt"): route "connect" refuses with CONNACK 3 (5 for
  401/403 rules); "telemetry" closes the connection; "twin/GET" and "twin/PATCH/reported"
  answer with the rule's status; `latency` delays every packet; `drop`/`drop_all` cut
  connections.
- Persistent sessions: after a CONNECT with CleanSession 0 the identity's subscriptions
  outlive the connection, and the next CleanSession 0 CONNECT resumes them (CONNACK
  session-present 1). azure-iot-device (Python) subscribes once per feature and never
  again, so its twin calls, methods and desired patches after a reconnect depend on it.
  CleanSession 1 starts afresh. Deleting or re-keying the identity forgets its session.
  Queued QoS 1 messages are not kept (see `cloud` for C2D).
- MQTT over WebSockets on `websocket_port` (443, IoT Hub's; None: not served), path
  `/$iothub/websocket`, subprotocol `mqtt` (see `websocket`), with the same rules.
- C2D: `send_c2d` publishes straight to a subscribed device (see `cloud`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from typing import TYPE_CHECKING, Any, Self, TypeVar

from bridge.logging import get_logger
from bridge_sim.errors import SimulatorError
from bridge_sim.iothub.errors import IoTHubError
from bridge_sim.iothub.faults import FaultInjector
from bridge_sim.iothub.mqtt import cloud, codec
from bridge_sim.iothub.mqtt.auth import ConnectRefusedError
from bridge_sim.iothub.mqtt.connection import DeviceConnection
from bridge_sim.iothub.mqtt.handshake import accept_device
from bridge_sim.iothub.mqtt.state import HubState, Limits
from bridge_sim.iothub.mqtt.tls import TlsError, server_context
from bridge_sim.iothub.mqtt.websocket import WEBSOCKET_PORT
from bridge_sim.iothub.quotas import Quotas

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine, Sequence
    from types import TracebackType

    from cryptography import x509
    from OpenSSL import SSL

    from bridge_sim.iothub.eventhub.log import EventLog
    from bridge_sim.iothub.registry import Registry

__all__ = ["DeviceEndpoint"]

_log = get_logger("sim.iothub.mqtt")
IdentityKey = tuple[str, str | None]
_T = TypeVar("_T")


class DeviceEndpoint:
    """Serves devices and modules over MQTT/TLS on `host:port` until exited."""

    def __init__(
        self,
        *,
        registry: Registry,
        events: EventLog,
        cert_pem: str,
        key_pem: str,
        host: str = "127.0.0.1",
        port: int = 8883,
        websocket_port: int | None = WEBSOCKET_PORT,
        hub_hostname: str | None = None,
        trusted_cas: Sequence[x509.Certificate] = (),
        quotas: Quotas | None = None,
        faults: FaultInjector | None = None,
        limits: Limits | None = None,
    ) -> None:
        self.hub_hostname = hub_hostname or registry.host_name
        if self.hub_hostname.lower() != registry.host_name.lower():
            # Device SAS tokens name the registry's host; any other would never verify.
            raise SimulatorError(
                f"hub_hostname {self.hub_hostname!r} is not the registry's {registry.host_name!r}"
            )
        self.host = host
        self.port = port
        self.websocket_port = websocket_port
        self.trusted_cas = list(trusted_cas)
        self.hub = HubState(
            registry=registry,
            events=events,
            quotas=quotas or Quotas(None),
            faults=faults or FaultInjector(),
            limits=limits or Limits(),
        )
        self._cert_pem = cert_pem
        self._key_pem = key_pem
        self._context: SSL.Context | None = None
        self._server: asyncio.Server | None = None
        self._websocket_server: asyncio.Server | None = None
        self._connections: dict[IdentityKey, DeviceConnection] = {}
        # Subscriptions of persistent (CleanSession 0) sessions, kept between connections.
        # Each with the credentials it was opened with: a new key or identity starts afresh.
        self._sessions: dict[IdentityKey, tuple[set[str], object]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._remove_listener: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def registry(self) -> Registry:
        return self.hub.registry

    @property
    def faults(self) -> FaultInjector:
        return self.hub.faults

    # -- lifecycle -----------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        try:
            self._context = server_context(self._cert_pem, self._key_pem)
        except Exception as error:
            raise SimulatorError(f"unusable server certificate or key: {error}") from error
        self._loop = asyncio.get_running_loop()
        try:
            self._server = await asyncio.start_server(self._serve, self.host, self.port)
        except OSError as error:
            raise SimulatorError(
                f"cannot serve IoT Hub MQTT on {self.host}:{self.port}: {error}"
            ) from error
        if self.websocket_port is not None:
            try:
                self._websocket_server = await asyncio.start_server(
                    functools.partial(self._serve, websocket=True), self.host, self.websocket_port
                )
            except OSError as error:
                self._server.close()
                raise SimulatorError(
                    f"cannot serve IoT Hub MQTT over WebSockets on {self.host}:"
                    f"{self.websocket_port}: {error}"
                ) from error
        self._remove_listener = self.registry.add_identity_listener(self._identity_changed)
        _log.info("sim.iothub.devices_serving", host=self.host, port=self.port)
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
        websocket_server, self._websocket_server = self._websocket_server, None
        for each in (server, websocket_server):
            if each is not None:
                each.close()
        for connection in list(self._connections.values()):
            connection.close("endpoint stopped", abort=True)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for each in (server, websocket_server):
            if each is not None:
                await each.wait_closed()
        for future in self.hub.pending_methods.values():
            future.cancel()
        self.hub.pending_methods.clear()

    # -- connections ---------------------------------------------------------------------

    def connection(self, device_id: str, module_id: str | None = None) -> DeviceConnection | None:
        """The live connection of an identity, if any."""
        connection = self._connections.get((device_id, module_id))
        return None if connection is None or connection.closed else connection

    def drop(self, device_id: str, module_id: str | None = None) -> bool:
        """Fault: cut an identity's connection without a word; True if there was one."""
        connection = self._connections.get((device_id, module_id))
        if connection is None:
            return False
        connection.close("dropped on demand", abort=True)
        return True

    def drop_all(self) -> int:
        """Fault: cut every connection; returns how many there were."""
        connections = list(self._connections.values())
        for connection in connections:
            connection.close("dropped on demand", abort=True)
        return len(connections)

    async def _serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, websocket: bool = False
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._serve_device(reader, writer, websocket=websocket)
        except asyncio.CancelledError:
            writer.transport.abort()
        except Exception:
            _log.exception("sim.iothub.device_connection_failed")
            writer.transport.abort()
        finally:
            self._tasks.discard(task)

    async def _serve_device(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, websocket: bool
    ) -> None:
        assert self._context is not None
        try:
            accepted = await accept_device(
                reader,
                writer,
                context=self._context,
                hub=self.hub,
                hub_hostname=self.hub_hostname,
                trusted_cas=self.trusted_cas,
                websocket=websocket,
            )
        except ConnectRefusedError as refusal:
            _log.info("sim.iothub.device_refused", code=refusal.return_code, reason=refusal.reason)
            return
        except (TlsError, ConnectionError, TimeoutError, codec.MalformedPacketError) as error:
            _log.info("sim.iothub.device_rejected_before_connect", reason=str(error))
            writer.transport.abort()
            return
        connection = DeviceConnection(
            accepted.stream, accepted.decoder, accepted.auth, self.hub, accepted.connect.keepalive
        )
        connection.persistent = not accepted.connect.clean_session
        key = connection.auth.key
        self._save_session(self._connections.get(key))  # the connection this one replaces
        self._register(connection)
        filters, authentication = self._sessions.pop(key, (None, None))
        resumed = connection.persistent and filters is not None
        resumed = resumed and authentication == connection.auth.authentication
        if resumed and filters:
            connection.restore(filters)
        accepted.stream.write(codec.encode_connack(0, session_present=resumed))
        try:
            await connection.run(accepted.pending)
        finally:
            if self._connections.get(key) is connection:
                self._save_session(connection)
            self._unregister(connection)

    def _save_session(self, connection: DeviceConnection | None) -> None:
        # A session dies with its identity, or with the credentials it was opened with.
        if connection is None or not connection.persistent:
            return
        identity = self.registry.find(*connection.auth.key)
        if identity is not None and identity.authentication == connection.auth.authentication:
            self._sessions[connection.auth.key] = (
                set(connection.subscriptions),
                connection.auth.authentication,
            )

    def _register(self, connection: DeviceConnection) -> None:
        key = connection.auth.key
        old = self._connections.get(key)
        if old is not None:
            # IoT Hub keeps the newest connection of an identity and drops the older one.
            self._unregister(old)
            old.close("replaced by a new connection", abort=True)
        self._connections[key] = connection
        self._record_state(key, connected=True)
        _log.info("sim.iothub.device_connected", device_id=key[0], module_id=key[1])

    def _unregister(self, connection: DeviceConnection) -> None:
        key = connection.auth.key
        if self._connections.get(key) is not connection:
            return
        del self._connections[key]
        self._record_state(key, connected=False)

    def _record_state(self, key: IdentityKey, *, connected: bool) -> None:
        device_id, module_id = key
        with contextlib.suppress(IoTHubError):
            self.registry.set_connection_state(device_id, connected, module_id)
        self.hub.events.append_connection_state(device_id, module_id, connected)

    def _identity_changed(self, event: str, device_id: str, module_id: str | None) -> None:
        # Runs on the registry writer's thread, under its lock: hand off to our loop.
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._drop_if_invalid, event, device_id, module_id)

    def _drop_if_invalid(self, event: str, device_id: str, module_id: str | None) -> None:
        for key, connection in list(self._connections.items()):
            if key[0] != device_id or (module_id is not None and key[1] != module_id):
                continue
            identity = self.registry.find(*key)
            still_valid = (
                event != "deleted"
                and identity is not None
                and self.registry.device_enabled(device_id)
                and identity.authentication == connection.auth.authentication
            )
            if not still_valid:
                connection.close(f"identity {event}", abort=True)

    # -- cloud-initiated operations ------------------------------------------------------

    async def invoke_method(
        self, device_id: str, module_id: str | None, request: dict[str, Any]
    ) -> tuple[int, Any]:
        """The REST seam (`MethodInvoker`): call a direct method, return (status, payload)."""
        return await self._on_own_loop(
            lambda: cloud.invoke_method(
                self.hub, self.connection(device_id, module_id), device_id, request
            )
        )

    async def send_c2d(
        self, device_id: str, body: bytes | str, properties: dict[str, str] | None = None
    ) -> str:
        """Deliver a cloud-to-device message now; returns its message id."""
        return await self._on_own_loop(
            lambda: cloud.send_c2d(self.connection(device_id), device_id, body, properties)
        )

    async def _on_own_loop(self, operation: Callable[[], Coroutine[Any, Any, _T]]) -> _T:
        # Connections belong to the endpoint's loop; a REST API served from another thread
        # must not touch them from there.
        loop = self._loop
        if loop is None or loop is asyncio.get_running_loop():
            return await operation()
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(operation(), loop))
