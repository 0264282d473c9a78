"""Device-to-cloud messages as each device's relay module, many modules per AMQP connection.

What Microsoft's C and .NET device SDKs and its protocol gateway do to carry many
identities: one AMQP 1.0 connection (TLS, SASL ANONYMOUS), and per identity a CBS
put-token (a SAS token scoped `{host}/devices/{device}/modules/{module}`, renewed before it
expires) and a sender link to `/devices/{device}/modules/{module}/messages/events`. A
message counts as sent when IoT Hub settles it accepted. About a thousand identities share
a connection; more connections open as needed. Microsoft's Python device SDK speaks MQTT
only, one connection per identity (`bridge.azure.telemetry`), which costs a TLS handshake
and a new-connection throttle token per identity and does not reach a large fleet.

python-qpid-proton's reactor is blocking, so it runs in a thread of its own; the event
loop hands it work through an `EventInjector` and gets results back through futures
settled by a `LoopHandoff`. Both directions wake the other thread once for every batch of
work, not once per message: at thousands of messages a second the wake-ups (a pipe write
and a selector pass each) cost more than the sends. Module keys are read from the registry
once per device and kept in memory only, as for the MQTT sender; keys and tokens are never
logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import queue
import tempfile
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

from proton import SSL, Delivery, Endpoint, Handler, Message, SSLDomain
from proton.reactor import ApplicationEvent, Container, EventInjector

from bridge.azure.amqp_message import encode_message
from bridge.azure.budget import RateBudget
from bridge.azure.hub import IotHubService
from bridge.azure.models import SasAuth
from bridge.azure.quotas import Operation
from bridge.azure.sas import sign
from bridge.core.handoff import LoopHandoff
from bridge.errors import ConfigError, NotFound, Rejected
from bridge.logging import get_logger

__all__ = ["AmqpModuleSender", "SendFailed", "device_sas_token"]

_log = get_logger("azure.amqp")
_TIMEOUT = 30.0
AMQPS_PORT = 5671
_CBS = "$cbs"
_CBS_CREDIT = 100
_TOKEN_TYPE = "servicebus.windows.net:sastoken"  # noqa: S105 - a type name
# Conditions that say the identity is refused as things stand: retrying cannot help.
_REFUSED = frozenset({"amqp:unauthorized-access", "amqp:not-found", "amqp:not-allowed"})
_REFUSED_STATUS = frozenset({401, 403, 404})
_OUTCOMES = (Delivery.ACCEPTED, Delivery.REJECTED, Delivery.RELEASED, Delivery.MODIFIED)


class SendFailed(Exception):  # noqa: N818 - reads as what happened
    """IoT Hub did not take the message this time (dropped connection, throttled, 5xx)."""


def device_sas_token(resource: str, key: str, expiry: int) -> str:
    """A device or module SAS token for `resource` (`{host}/devices/{id}[/modules/{mid}]`)."""
    encoded = quote_plus(resource)
    signature = quote(sign(encoded, expiry, key), safe="")
    return f"SharedAccessSignature sr={encoded}&sig={signature}&se={expiry}"


@dataclass(eq=False)
class _Send:
    """One encoded message waiting for its settlement, and the future the loop awaits."""

    payload: bytes
    done: Callable[[BaseException | None], None]


@dataclass(eq=False)
class _Identity:
    """A module identity on one connection: its token, its link, its messages (proton thread)."""

    device_id: str
    resource: str
    address: str
    key: str = field(repr=False)
    connection: _Connection
    expiry: int = 0
    renewing: bool = False
    link: Any = None
    last_used: float = 0.0  # time.monotonic() of its latest send
    pending: deque[_Send] = field(default_factory=deque)
    in_flight: dict[Any, _Send] = field(default_factory=dict)


@dataclass(eq=False)
class _Connection:
    """One AMQP connection: its `$cbs` links and the identities it carries (proton thread)."""

    number: int
    proton: Any = None
    session: Any = None
    cbs_sender: Any = None
    cbs_receiver: Any = None
    identities: dict[str, _Identity] = field(default_factory=dict)
    cbs_queue: deque[Message] = field(default_factory=deque)
    cbs_waiting: dict[str, tuple[_Identity, int]] = field(default_factory=dict)
    closed: bool = False


class AmqpModuleSender:
    """Sends telemetry as `<device>/<module_id>`, many identities multiplexed per connection.

    Args:
        hub: The service API, to read each relay module's SAS key.
        module_id: The relay module every device has (the mirror creates it).
        budget: Paces identity authorizations (IoT Hub counts them as new connections).
        host_name: The hub's device-facing host name; default: the service's. TLS checks
            the server certificate against it.
        gateway_host: An address to connect to instead (emulators, gateways).
        ca_file: Trust this CA (emulators) instead of the system store.
        port: AMQPS port, 5671 on IoT Hub.
        links_per_connection: Identities one connection carries before another opens.
        token_ttl: Seconds each SAS token is valid.
        renew_before: Seconds before expiry a token is put again.
        send_timeout: Seconds a send may take, authorization included.
        idle_seconds: An identity that sent nothing for this long gives its link (and its
            connection, once it carries none) back; its next message authorizes it again.
            None keeps every link open.
    """

    def __init__(
        self,
        hub: IotHubService,
        module_id: str,
        *,
        budget: RateBudget,
        host_name: str | None = None,
        gateway_host: str | None = None,
        ca_file: Path | None = None,
        ca_pem: str | None = None,
        port: int = AMQPS_PORT,
        links_per_connection: int = 1000,
        token_ttl: int = 3600,
        renew_before: int = 600,
        send_timeout: float = _TIMEOUT,
        idle_seconds: float | None = None,
    ) -> None:
        if not 0 < renew_before < token_ttl:
            raise ValueError("renew_before must be positive and less than token_ttl")
        if not SSL.present():
            # PyPI has no wheel of python-qpid-proton: built without OpenSSL's headers, it
            # installs fine and cannot speak TLS, which IoT Hub requires.
            raise ConfigError(
                "python-qpid-proton was built without TLS support (install OpenSSL's "
                "development headers and reinstall it), or set BRIDGE_RELAY__TRANSPORT=mqtt"
            )
        self._hub = hub
        self._module_id = module_id
        self._budget = budget
        self._host_name = host_name or hub.host_name
        self._address = gateway_host or self._host_name
        self._port = port
        self._timeout = send_timeout
        self._keys: dict[str, str] = {}
        self._linked: set[str] = set()  # identities authorized and linked (event loop's view)
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if ca_file is None and ca_pem is not None:
            self._tmp = tempfile.TemporaryDirectory(prefix="bridge-amqp-ca-")
            ca_file = Path(self._tmp.name) / "ca.pem"
            ca_file.write_text(ca_pem)
        self._reactor = _Reactor(
            address=f"amqps://{self._address}:{port}",
            host_name=self._host_name,
            ca_file=ca_file,
            links_per_connection=links_per_connection,
            token_ttl=token_ttl,
            renew_before=renew_before,
            idle_seconds=idle_seconds,
        )
        self._handoff: LoopHandoff | None = None
        self._reactor.lost = self._lost

    def _lost(self, device_id: str) -> None:
        # Reactor thread: an identity's link or connection is gone; re-authorizing it will
        # spend a new-connection token again.
        if self._handoff is not None:
            self._handoff.post(self._linked.discard, device_id)

    def _handoff_to(self, loop: asyncio.AbstractEventLoop) -> LoopHandoff:
        handoff = self._handoff
        if handoff is None or handoff.loop is not loop:
            handoff = self._handoff = LoopHandoff(loop)
        return handoff

    @property
    def open_connections(self) -> int:
        """AMQP connections open now (each carries up to `links_per_connection` modules)."""
        return self._reactor.open_connections

    @property
    def connections_opened(self) -> int:
        """AMQP connections opened so far."""
        return self._reactor.connections_opened

    @property
    def linked(self) -> int:
        """Module identities authorized with a link open now."""
        return self._reactor.linked

    @property
    def closed_idle(self) -> int:
        """Links given back because their identity sent nothing for `idle_seconds`."""
        return self._reactor.closed_idle

    async def send(
        self,
        device_id: str,
        body: bytes,
        *,
        message_id: str,
        properties: Mapping[str, str],
        content_type: str | None = None,
        content_encoding: str | None = None,
    ) -> None:
        """Send one message as the device's relay module; returns once IoT Hub accepted it.

        Raises `Rejected` when retrying cannot help as things stand (the module or its key
        is gone, IoT Hub refuses its token or its link), `SendFailed` or `TimeoutError`
        for what may pass (a dropped connection, throttling, a 5xx). Callers keep one send
        per device at a time, which keeps the device's order.
        """
        loop = asyncio.get_running_loop()
        handoff = self._handoff_to(loop)
        self._reactor.start()
        payload = encode_message(
            body,
            message_id=message_id,
            properties=properties,
            content_type=content_type,
            content_encoding=content_encoding,
        )
        try:
            key = await self._key(device_id)
            if device_id not in self._linked:
                await self._budget.acquire(Operation.NEW_CONNECTION)
            future: asyncio.Future[None] = loop.create_future()

            def done(error: BaseException | None) -> None:
                handoff.post(_settle, future, error)

            resource = f"{self._host_name}/devices/{device_id}/modules/{self._module_id}"
            address = f"/devices/{device_id}/modules/{self._module_id}/messages/events"
            self._reactor.submit(
                lambda: self._reactor.send(device_id, resource, address, key, _Send(payload, done))
            )
            async with asyncio.timeout(self._timeout):
                await future
        except Rejected:
            self._linked.discard(device_id)
            self.forget_key(device_id)  # a regenerated key is read again next time
            raise
        except NotFound as exc:
            self._linked.discard(device_id)
            self.forget_key(device_id)
            raise Rejected(
                f"IoT Hub has no relay module {self._module_id} of {device_id}: {exc}",
                device_id=device_id,
            ) from exc
        except SendFailed:
            raise  # the reactor dropped the identity if its link or connection went
        except BaseException:
            self._linked.discard(device_id)
            # Timed out or cancelled: whatever became of that link, start it afresh.
            self._reactor.submit(lambda: self._reactor.reset(device_id))
            raise
        self._linked.add(device_id)

    def forget_key(self, device_id: str) -> None:
        """Read the module's key again next time (it was regenerated or refused)."""
        self._keys.pop(device_id, None)

    async def close(self) -> None:
        """Close every connection and stop the reactor thread."""
        await asyncio.to_thread(self._reactor.stop, _TIMEOUT)
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    async def _key(self, device_id: str) -> str:
        key = self._keys.get(device_id)
        if key is None:
            module = await self._hub.get_module(device_id, self._module_id)
            if not isinstance(module.auth, SasAuth) or not module.auth.primary_key:
                raise Rejected(
                    f"relay module {self._module_id} of {device_id} has no SAS key",
                    device_id=device_id,
                )
            key = self._keys[device_id] = module.auth.primary_key
        return key


def _settle(future: asyncio.Future[None], error: BaseException | None) -> None:
    if future.done():
        return  # timed out or cancelled meanwhile
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)


class _Reactor(Handler):
    """Proton's container and every connection, link and timer; runs in its own thread.

    Everything but `submit`, `start`, `stop` and the counters runs on the reactor thread.
    A plain `Handler`, not proton's `MessagingHandler`: that one passes every event through
    four child handlers in Python, which cost more than the rest of a send at this rate.
    """

    def __init__(
        self,
        *,
        address: str,
        host_name: str,
        ca_file: Path | None,
        links_per_connection: int,
        token_ttl: int,
        renew_before: int,
        idle_seconds: float | None,
    ) -> None:
        self._url = address
        self._host_name = host_name
        self._ca_file = ca_file
        self._per_connection = links_per_connection
        self._ttl = token_ttl
        self._renew_before = renew_before
        self._idle = idle_seconds
        self._sweep = max(0.5, min(60.0, renew_before / 4, (idle_seconds or 3600) / 4))
        self._commands: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        # True while a "commands" event is on its way; the reactor clears it before it
        # takes commands, so a command queued after it looked gets a wake-up of its own.
        self._woken = False
        self._injector = EventInjector()
        self._container: Any = None
        self._thread: threading.Thread | None = None
        self._started = threading.Lock()
        self._connections: list[_Connection] = []
        self._by_proton: dict[Any, _Connection] = {}
        self._identities: dict[str, _Identity] = {}
        self._by_link: dict[Any, _Identity] = {}
        self._numbers = itertools.count(1)
        self._timer: Any = None
        self.lost: Callable[[str], None] = lambda _device_id: None
        self.open_connections = 0
        self.connections_opened = 0
        self.linked = 0
        self.closed_idle = 0

    # -- any thread ----------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            if not self._thread.is_alive():
                raise SendFailed("the AMQP reactor has stopped")
            return
        with self._started:
            if self._thread is not None:
                return
            self._container = Container(self)
            self._container.selectable(self._injector)
            thread = threading.Thread(target=self._run, name="amqp-relay", daemon=True)
            thread.start()
            self._thread = thread

    def submit(self, command: Callable[[], None]) -> None:
        """Run `command` on the reactor thread, soon."""
        self._commands.put(command)
        if not self._woken:
            self._woken = True
            self._injector.trigger(ApplicationEvent("commands"))

    def stop(self, timeout: float) -> None:
        """Close every connection, end the reactor thread (blocking: call from a thread)."""
        if self._thread is None:
            return
        self.submit(self._shutdown)
        self._thread.join(timeout)

    def _run(self) -> None:
        try:
            self._container.run()
        except Exception:
            _log.exception("amqp.reactor_failed")
        finally:
            self._fail_everything(SendFailed("the AMQP reactor stopped"))

    # -- reactor thread: commands ----------------------------------------------------------

    def on_commands(self, _event: Any) -> None:
        self._woken = False
        while True:
            try:
                command = self._commands.get_nowait()
            except queue.Empty:
                return
            try:
                command()
            except Exception:
                _log.exception("amqp.command_failed")

    def send(self, device_id: str, resource: str, address: str, key: str, send: _Send) -> None:
        identity = self._identities.get(device_id)
        if identity is not None and identity.key != key:
            self._drop_identity(identity, SendFailed("module key changed"))
            identity = None
        if identity is None:
            identity = self._identities[device_id] = _Identity(
                device_id=device_id,
                resource=resource,
                address=address,
                key=key,
                connection=self._connection_with_room(),
            )
            identity.connection.identities[device_id] = identity
            self._put_token(identity)
        identity.last_used = time.monotonic()
        identity.pending.append(send)
        self._pump(identity)

    def reset(self, device_id: str) -> None:
        identity = self._identities.get(device_id)
        if identity is None:
            return
        connection = identity.connection
        if not identity.expiry and not connection.closed:
            # Not even authorized in all that time: the connection (or its `$cbs`) hangs.
            # Start it afresh, or every identity placed on it would wait out its timeout.
            self._lose(connection, SendFailed("the AMQP connection stopped answering"))
            connection.proton.close()
        else:
            self._drop_identity(identity, SendFailed("reset after a failed send"))

    def _shutdown(self) -> None:
        # Messages in flight fail now (unacknowledged to AWS, which sends them again); the
        # reactor ends without waiting for IoT Hub to answer the CLOSE frames.
        self._close_all()
        self._injector.close()
        self._container.stop()

    def _close_all(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for connection in list(self._connections):
            self._lose(connection, SendFailed("the sender is closing"))
            if connection.proton is not None:
                connection.proton.close()

    # -- reactor thread: connections -------------------------------------------------------

    def _connection_with_room(self) -> _Connection:
        for connection in self._connections:
            if not connection.closed and len(connection.identities) < self._per_connection:
                return connection
        return self._open_connection()

    def _open_connection(self) -> _Connection:
        domain = SSLDomain(SSLDomain.MODE_CLIENT)
        if self._ca_file is not None:
            domain.set_trusted_ca_db(str(self._ca_file))
        domain.set_peer_authentication(SSLDomain.VERIFY_PEER_NAME)
        connection = _Connection(number=next(self._numbers))
        proton = self._container.connect(
            url=self._url,
            ssl_domain=domain,
            allowed_mechs="ANONYMOUS",
            sasl_enabled=True,
            reconnect=False,
            heartbeat=60,
            virtual_host=self._host_name,  # Open's hostname, and the name TLS checks
        )
        connection.proton = proton
        session = connection.session = proton.session()
        session.open()
        cbs_sender = connection.cbs_sender = session.sender(f"cbs-sender-{connection.number}")
        cbs_sender.target.address = _CBS
        cbs_sender.open()
        cbs_receiver = session.receiver(f"cbs-receiver-{connection.number}")
        connection.cbs_receiver = cbs_receiver
        cbs_receiver.source.address = _CBS
        cbs_receiver.flow(_CBS_CREDIT)
        cbs_receiver.open()
        self._connections.append(connection)
        self._by_proton[proton] = connection
        self.connections_opened += 1
        self.open_connections = sum(1 for c in self._connections if not c.closed)
        if self._timer is None:
            self._timer = self._container.schedule(self._sweep, self)
        return connection

    def on_timer_task(self, _event: Any) -> None:
        """Give idle links back; put a fresh token for every identity nearing its end."""
        if self._idle is not None:
            self._close_idle(time.monotonic() - self._idle)
        soon = time.time() + self._renew_before
        for identity in list(self._identities.values()):
            if identity.expiry and identity.expiry <= soon and not identity.renewing:
                identity.renewing = True
                self._put_token(identity)
        self._timer = None
        if self._connections:
            self._timer = self._container.schedule(self._sweep, self)

    def _close_idle(self, used_before: float) -> None:
        # A fleet's identities outnumber the ones sending at any time (devices cut over,
        # retired, quiet): a link each for every device ever seen would grow without end.
        for identity in list(self._identities.values()):
            if (
                identity.last_used < used_before
                and identity.expiry  # authorized: not waiting for its token
                and not identity.pending
                and not identity.in_flight
            ):
                self._drop_identity(identity, SendFailed("idle"))  # no message is waiting
                self.closed_idle += 1
        for connection in list(self._connections):
            if not connection.identities and not connection.cbs_waiting:
                self._lose(connection, SendFailed("idle"))
                connection.proton.close()

    def _put_token(self, identity: _Identity) -> None:
        connection = identity.connection
        expiry = int(time.time()) + self._ttl
        request_id = str(uuid.uuid4())
        token = device_sas_token(identity.resource, identity.key, expiry)
        message = Message(
            body=token,
            id=request_id,
            reply_to=_CBS,
            properties={
                "operation": "put-token",
                "type": _TOKEN_TYPE,
                "name": identity.resource,
            },
        )
        connection.cbs_waiting[request_id] = (identity, expiry)
        connection.cbs_queue.append(message)
        self._flush_cbs(connection)

    def _flush_cbs(self, connection: _Connection) -> None:
        sender = connection.cbs_sender
        while connection.cbs_queue and sender is not None and sender.credit > 0:
            sender.send(connection.cbs_queue.popleft())

    def _cbs_reply(self, connection: _Connection, message: Message) -> None:
        """A `$cbs` reply: the put-token it answers authorizes its identity, or refuses it."""
        waiting = connection.cbs_waiting.pop(str(message.correlation_id), None)
        if waiting is None:
            return
        identity, expiry = waiting
        if self._identities.get(identity.device_id) is not identity:
            return  # dropped while its token was on the way
        identity.renewing = False
        properties: dict[str, Any] = message.properties or {}
        status = int(properties.get("status-code", 0) or 0)
        if status in (200, 202):
            identity.expiry = expiry
            if identity.link is None:
                self._attach(identity)
            return
        description = str(properties.get("status-description", ""))
        reason = f"IoT Hub answered put-token with {status}: {description}"
        error: BaseException = (
            Rejected(reason, device_id=identity.device_id)
            if status in _REFUSED_STATUS
            else SendFailed(reason)
        )
        self._drop_identity(identity, error)

    def _attach(self, identity: _Identity) -> None:
        session = identity.connection.session
        link = session.sender(f"events-{identity.device_id}-{uuid.uuid4().hex[:8]}")
        link.target.address = identity.address
        link.snd_settle_mode = link.SND_UNSETTLED
        link.open()
        identity.link = link
        self._by_link[link] = identity
        self.linked += 1

    # -- reactor thread: sending -----------------------------------------------------------

    def on_link_flow(self, event: Any) -> None:
        link = event.link
        if not link.is_sender or not link.credit:
            return
        identity = self._by_link.get(link)
        if identity is not None:
            self._pump(identity)
            return
        connection = self._by_proton.get(event.connection)
        if connection is not None and link == connection.cbs_sender:
            self._flush_cbs(connection)

    def _pump(self, identity: _Identity) -> None:
        link = identity.link
        if link is None:
            return
        while identity.pending and link.credit > 0:
            send = identity.pending.popleft()
            delivery = link.delivery(link.delivery_tag())
            link.stream(send.payload)
            link.advance()
            identity.in_flight[delivery] = send

    def on_delivery(self, event: Any) -> None:
        delivery = event.delivery
        link = delivery.link
        if link.is_receiver:
            self._received(event, link, delivery)
            return
        if not delivery.updated:
            return
        state = delivery.remote_state
        if state == Delivery.ACCEPTED:
            self._settled(link, delivery, None)
        elif state == Delivery.REJECTED:
            self._settled(link, delivery, self._rejection(link, delivery))
        elif state in (Delivery.RELEASED, Delivery.MODIFIED):
            self._settled(link, delivery, SendFailed("IoT Hub released the message"))
        elif delivery.settled:
            # Settled without an outcome we know of: not accepted, so not sent.
            self._settled(link, delivery, SendFailed(f"settled as {state}"))
        if delivery.settled:
            delivery.settle()

    def _rejection(self, link: Any, delivery: Any) -> BaseException:
        condition = delivery.remote.condition
        name = condition.name if condition is not None else ""
        description = f"{name}: {condition.description}" if condition is not None else "rejected"
        identity = self._by_link.get(link)
        device_id = identity.device_id if identity is not None else ""
        reason = f"IoT Hub rejected the message: {description}"
        return Rejected(reason, device_id=device_id) if name in _REFUSED else SendFailed(reason)

    def _received(self, event: Any, link: Any, delivery: Any) -> None:
        if delivery.aborted:
            delivery.settle()
            return
        if not delivery.readable or delivery.partial:
            return
        message = Message()
        message.decode(link.recv(delivery.pending))
        link.advance()
        delivery.update(Delivery.ACCEPTED)
        delivery.settle()
        link.flow(1)  # keep the `$cbs` receiver's credit where it was
        connection = self._by_proton.get(event.connection)
        if connection is not None and link == connection.cbs_receiver:
            self._cbs_reply(connection, message)

    def _settled(self, link: Any, delivery: Any, error: BaseException | None) -> None:
        identity = self._by_link.get(link)
        if identity is None:
            return
        send = identity.in_flight.pop(delivery, None)
        if send is not None:
            send.done(error)

    # -- reactor thread: failures ----------------------------------------------------------

    def on_link_remote_close(self, event: Any) -> None:
        link = event.link
        identity = self._by_link.get(link)
        if identity is not None:
            condition = link.remote_condition
            name = condition.name if condition is not None else ""
            reason = f"IoT Hub detached the link of {identity.device_id}: {name or 'closed'}"
            if condition is not None and condition.description:
                reason += f" ({condition.description})"
            refused = name in _REFUSED
            error = (
                Rejected(reason, device_id=identity.device_id) if refused else SendFailed(reason)
            )
            self._drop_identity(identity, error)
        elif not link.state & Endpoint.LOCAL_CLOSED:
            # A `$cbs` link went: nothing more can be authorized here; start afresh.
            connection = self._by_proton.get(event.connection)
            if connection is not None:
                self._lose(connection, SendFailed("IoT Hub detached the $cbs link"))
                event.connection.close()
        if not link.state & Endpoint.LOCAL_CLOSED:
            link.close()

    def on_connection_remote_close(self, event: Any) -> None:
        connection = self._by_proton.get(event.connection)
        if connection is not None:
            condition = event.connection.remote_condition
            reason = f"{condition.name}: {condition.description}" if condition else "closed"
            self._lose(connection, SendFailed(f"IoT Hub closed the connection ({reason})"))
        if not event.connection.state & Endpoint.LOCAL_CLOSED:
            event.connection.close()

    def on_transport_closed(self, event: Any) -> None:
        connection = self._by_proton.get(event.connection)
        if connection is not None:
            condition = event.transport.condition
            reason = f"{condition.name}: {condition.description}" if condition else "closed"
            self._lose(connection, SendFailed(f"AMQP connection lost ({reason})"))

    def on_transport_error(self, event: Any) -> None:
        condition = event.transport.condition
        _log.warning(
            "amqp.transport_error",
            condition=condition.name if condition else None,
            description=condition.description if condition else None,
        )

    def _drop_identity(self, identity: _Identity, error: BaseException) -> None:
        """Forget an identity: fail its messages; its link closes; a new send starts over."""
        if self._identities.get(identity.device_id) is identity:
            del self._identities[identity.device_id]
        identity.connection.identities.pop(identity.device_id, None)
        link, identity.link = identity.link, None
        if link is not None:
            self._by_link.pop(link, None)
            self.linked -= 1
            if not identity.connection.closed:
                with contextlib.suppress(Exception):
                    link.close()
        self.lost(identity.device_id)
        sends = [*identity.in_flight.values(), *identity.pending]
        identity.in_flight.clear()
        identity.pending.clear()
        for send in sends:
            send.done(error)

    def _lose(self, connection: _Connection, error: BaseException) -> None:
        """A connection is gone: every identity on it fails its messages and starts over."""
        if connection.closed:
            return
        connection.closed = True
        for identity in list(connection.identities.values()):
            self._drop_identity(identity, error)
        connection.cbs_waiting.clear()
        connection.cbs_queue.clear()
        self._by_proton.pop(connection.proton, None)
        self._connections.remove(connection)
        self.open_connections = sum(1 for c in self._connections if not c.closed)

    def _fail_everything(self, error: BaseException) -> None:
        for connection in list(self._connections):
            self._lose(connection, error)
