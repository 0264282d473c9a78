"""AWS IoT Core as the bridge's `Source`: registry, presence and shadow events over MQTT 5.

    async with AwsSource(cloud) as source:
        async for delivery in source.deliveries():
            store(delivery.event)
            delivery.ack()

At-least-once, end to end: the session is persistent (Clean Start 0, a session expiry), every
subscription is QoS 1, and the PUBACK for a message goes out only when the engine calls
`Delivery.ack()`. A message the bridge never acknowledged, because it crashed, stopped or
lost the connection, comes again from the broker when the session resumes.

Back-pressure: the CONNECT's Receive Maximum is `max_pending`, so the broker stops sending
once that many QoS 1 messages wait for their PUBACK, and PUBACKs are held back while that
many messages wait for the engine (`AckValve`), for brokers that overshoot. awscrt's threads
therefore never block and never drop a message.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import hashlib
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import TYPE_CHECKING, Any, Self

from awscrt import mqtt5

from bridge.aws import crt
from bridge.aws.codec import SUBSCRIPTIONS, decode
from bridge.aws.inbox import AckValve, Arrival, Inbox
from bridge.core.handoff import LoopHandoff
from bridge.core.ports import Delivery
from bridge.errors import ConfigError, MalformedEvent, SourceError
from bridge.logging import get_logger

if TYPE_CHECKING:
    from types import TracebackType

    from bridge.config import CloudSettings

__all__ = ["CLIENT_ID_PREFIX", "AwsSource", "default_client_id"]

log = get_logger("aws.source")
CLIENT_ID_PREFIX = "iot-bridge"  # the bridge's IoT policy allows client ids starting so
_FILTERS_PER_SUBSCRIBE = 8  # AWS IoT's limit of subscriptions per SUBSCRIBE request
_DEFAULT_PORT = 8883
_STOP_TIMEOUT_S = 10.0
_FLUSH_TIMEOUT_S = 2.0
# Unsubscribed on leaving, never subscribed: its UNSUBACK proves the PUBACKs before it arrived.
_FLUSH_FILTER = f"{CLIENT_ID_PREFIX}/flush"


def default_client_id(cloud: CloudSettings) -> str:
    """`iot-bridge-<digest of the bridge certificate>`: stable across restarts, so the
    persistent session is found again, and distinct per bridge identity."""
    if cloud.AWS_IOT_BRIDGE_CERT is None:
        raise ConfigError("AWS_IOT_BRIDGE_CERT is not set")
    digest = hashlib.sha256(cloud.AWS_IOT_BRIDGE_CERT.read_bytes()).hexdigest()[:12]
    return f"{CLIENT_ID_PREFIX}-{digest}"


def _endpoint(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if host and port.isdigit():
        return host, int(port)
    return value, _DEFAULT_PORT


def _nothing_to_ack() -> None:
    """QoS 0 messages are not acknowledged."""


class AwsSource:
    """Subscribes to AWS IoT's registry, presence and shadow topics over mutual TLS.

    Args:
        cloud: Endpoint, CA and the bridge's certificate and key (`AWS_IOT_*`).
        client_id: MQTT client id; the session belongs to it. Default: `default_client_id`.
            Replicas need one each.
        share_group: Subscribe as `$share/<group>/<filter>`, so replicas split the traffic.
        session_expiry_s: How long the broker keeps the session (and queues for it) while
            the bridge is away. AWS IoT's default limit is one hour.
        max_pending: Messages received and not yet acknowledged, at most (the CONNECT's
            Receive Maximum); AWS IoT allows 100 in flight per connection.
        connect_timeout_s: How long entering the context waits for the first subscription.
        reconnect_delay_s: awscrt's reconnect backoff, (min, max) seconds, with full jitter.
        keep_alive_s: MQTT keep-alive; also how fast a silent network failure is noticed.
        filters: Topic filters to subscribe to instead of the registry, presence and shadow
            topics (the relay's telemetry); their messages are delivered undecoded.
    """

    def __init__(
        self,
        cloud: CloudSettings,
        *,
        client_id: str | None = None,
        share_group: str | None = None,
        session_expiry_s: int = 3600,
        max_pending: int = 100,
        connect_timeout_s: float = 30.0,
        reconnect_delay_s: tuple[float, float] = (0.5, 30.0),
        keep_alive_s: int = 60,
        filters: Sequence[str] | None = None,
    ) -> None:
        missing = [
            name
            for name in (
                "AWS_IOT_DATA_ENDPOINT",
                "AWS_IOT_ROOT_CA",
                "AWS_IOT_BRIDGE_CERT",
                "AWS_IOT_BRIDGE_KEY",
            )
            if getattr(cloud, name) is None
        ]
        if missing:
            raise ConfigError(f"the AWS source needs {', '.join(missing)}")
        if session_expiry_s < 1:
            # Without a session, what is published while the bridge is away is lost.
            raise ValueError("session_expiry_s must be positive")
        if not 1 <= max_pending <= 65535:
            raise ValueError("max_pending must be within 1..65535 (MQTT Receive Maximum)")
        if filters is not None and not filters:
            raise ValueError("filters must not be empty (None means the mirror's topics)")
        if share_group is not None and (not share_group or set(share_group) & set("/+#")):
            raise ValueError("share_group must be non-empty and contain none of / + #")
        assert cloud.AWS_IOT_DATA_ENDPOINT is not None
        assert cloud.AWS_IOT_ROOT_CA is not None
        assert cloud.AWS_IOT_BRIDGE_CERT is not None
        assert cloud.AWS_IOT_BRIDGE_KEY is not None
        host, port = _endpoint(cloud.AWS_IOT_DATA_ENDPOINT)
        self._spec = crt.ClientSpec(
            host=host,
            port=port,
            ca_file=cloud.AWS_IOT_ROOT_CA,
            cert_file=cloud.AWS_IOT_BRIDGE_CERT,
            key_file=cloud.AWS_IOT_BRIDGE_KEY,
            client_id=client_id or default_client_id(cloud),
            session_expiry_s=session_expiry_s,
            receive_maximum=max_pending,
            keep_alive_s=keep_alive_s,
            reconnect_delay_s=reconnect_delay_s,
        )
        prefix = f"$share/{share_group}/" if share_group else ""
        self._decode = filters is None  # only the mirror's topics have events to decode
        self.filters = tuple(prefix + topic_filter for topic_filter in filters or SUBSCRIPTIONS)
        self._connect_timeout_s = connect_timeout_s
        self._inbox = Inbox(max_pending)
        self._valve = AckValve(self._inbox, self._send_puback)
        self._handoff: LoopHandoff | None = None
        self._loop_thread: int | None = None
        self._client: Any = None
        self._connection = 0  # counts successful connections; tags arrivals
        self._connected = False
        self._ever_connected = False
        self._closing = False
        self._last_error = "no attempt finished yet"
        self._first: asyncio.Future[None] | None = None
        self._stopped = asyncio.Event()
        # Set whenever a CONNACK says the broker had no session for the bridge: whatever
        # it would have queued meanwhile is lost (the mirror repairs with anti-entropy).
        self.session_lost = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def client_id(self) -> str:
        """The MQTT client id, which names the persistent session."""
        return self._spec.client_id

    @property
    def connected(self) -> bool:
        """True while connected with every subscription granted."""
        return self._connected

    @property
    def pending(self) -> int:
        """Messages received and not yet taken by the engine."""
        return len(self._inbox)

    @property
    def endpoint(self) -> str:
        """host:port of the MQTT endpoint."""
        return f"{self._spec.host}:{self._spec.port}"

    async def __aenter__(self) -> Self:
        loop = asyncio.get_running_loop()
        self._handoff = LoopHandoff(loop)
        self._loop_thread = threading.get_ident()
        self._first = loop.create_future()
        self._client = crt.build_client(
            self._spec,
            crt.Callbacks(
                publish=self._crt_publish,
                connected=self._crt_connected,
                failed=self._crt_failed,
                disconnected=self._crt_disconnected,
                stopped=self._crt_stopped,
            ),
        )
        self._client.start()
        try:
            async with asyncio.timeout(self._connect_timeout_s):
                await asyncio.shield(self._first)
        except TimeoutError:
            await self.aclose()
            raise SourceError(
                f"no subscription on {self.endpoint} as {self.client_id} within "
                f"{self._connect_timeout_s:g}s; last failure: {self._last_error}"
            ) from None
        except BaseException:
            await self.aclose()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def deliveries(self) -> AsyncIterator[Delivery]:
        """Every message on the subscribed topics, oldest first, until the source closes."""
        while (arrival := await self._inbox.get()) is not None:
            self._valve.taken()
            yield self._delivery(arrival)

    async def aclose(self) -> None:
        """Disconnect and stop the client; unacknowledged messages stay with the broker."""
        client = self._client
        if client is None:
            return
        was_connected, self._connected = self._connected, False
        self._closing = True
        self._inbox.close()
        for task in self._tasks:
            task.cancel()
        self._valve.open()  # stored messages: acknowledge them while we still can
        if was_connected:
            await self._flush(client)
        self._client = None
        # A normal DISCONNECT keeps the session for session_expiry_s, as the CONNECT asked.
        client.stop(mqtt5.DisconnectPacket())
        try:
            async with asyncio.timeout(_STOP_TIMEOUT_S):
                await self._stopped.wait()
        except TimeoutError:
            log.warning("aws.stop_unconfirmed", client_id=self.client_id)
        log.info("aws.stopped", client_id=self.client_id)

    async def _flush(self, client: Any) -> None:
        """Wait until the broker has the PUBACKs sent so far.

        awscrt sends packets in the order they were asked for, but a stop() can overtake
        PUBACKs still queued in the client (measured: acks made just before leaving were
        now and then lost, and their messages came again). The UNSUBACK of a request made
        after them proves the broker has them.
        """
        try:
            async with asyncio.timeout(_FLUSH_TIMEOUT_S):
                await self._crt_result(client.unsubscribe(crt.unsubscribe_packet([_FLUSH_FILTER])))
        except Exception as exc:
            log.warning(
                "aws.flush_unconfirmed",
                client_id=self.client_id,
                error=str(exc) or type(exc).__name__,
            )

    def _delivery(self, arrival: Arrival) -> Delivery:
        event, error = None, None
        try:
            if self._decode:
                event = decode(arrival.topic, arrival.payload)
        except MalformedEvent as exc:
            error = exc.reason
        ack: Callable[[], None] = _nothing_to_ack
        if arrival.handle is not None:
            ack = functools.partial(self._ack, arrival.handle)
        return Delivery(
            arrival.topic,
            arrival.payload,
            event,
            error,
            ack,
            arrival.received_at,
            arrival.properties,
        )

    def _ack(self, handle: object) -> None:
        if threading.get_ident() != self._loop_thread:
            # The valve's bookkeeping lives on the loop: an engine acking from a worker
            # thread is handed over rather than raced.
            self._post(self._valve.ack, handle)
        else:
            self._valve.ack(handle)

    def _send_puback(self, handle: object) -> None:
        client = self._client
        if client is None:
            return  # closed: the broker keeps the message and sends it to the next session
        try:
            # A handle of a lost connection is void in awscrt (no PUBACK is sent): the broker
            # sends that message again, and this ack's duplicate will be acknowledged then.
            client.invoke_publish_acknowledgement(handle)
        except Exception as exc:
            log.debug("aws.ack_failed", error=str(exc))

    # --- awscrt threads: hand everything to the event loop, in order -----------------------

    def _post(self, callback: Callable[..., None], *args: Any) -> None:
        # One wake-up of the loop carries every message that arrived meanwhile.
        if self._handoff is not None:
            self._handoff.post(callback, *args)

    def _crt_publish(self, data: Any) -> None:
        received_at = time.monotonic()
        try:
            topic, payload, handle, properties = crt.publish_fields(data)
        except Exception:
            log.exception("aws.publish_unreadable")
            return
        self._post(self._arrived, topic, payload, handle, received_at, properties)

    def _crt_connected(self, data: Any) -> None:
        self._post(self._on_connected, crt.rejoined_session(data))

    def _crt_failed(self, data: Any) -> None:
        self._post(self._on_failed, crt.describe_failure(data), crt.is_permanent(data))

    def _crt_disconnected(self, data: Any) -> None:
        self._post(self._on_disconnected, crt.describe_failure(data))

    def _crt_stopped(self, _data: Any) -> None:
        self._post(self._stopped.set)

    # --- event loop ------------------------------------------------------------------------

    def _arrived(
        self,
        topic: str,
        payload: bytes,
        handle: object | None,
        at: float,
        properties: dict[str, str],
    ) -> None:
        self._inbox.put(Arrival(topic, payload, handle, at, self._connection, properties))
        self._valve.arrived()

    def _on_connected(self, rejoined: bool) -> None:  # noqa: FBT001 - awscrt callback shape
        self._connection += 1
        self._valve.forget()
        resent = self._inbox.forget_resent(self._connection) if rejoined else 0
        log.info(
            "aws.connected",
            client_id=self.client_id,
            endpoint=self.endpoint,
            session_resumed=rejoined,
            awaiting_resend=resent,
        )
        if not rejoined:
            # No session: new, expired while the bridge was away, or lost in a broker
            # restart. Whatever it would have queued for the bridge is gone.
            self.session_lost.set()
            if self._ever_connected:
                log.warning("aws.session_lost", client_id=self.client_id)
        self._ever_connected = True
        if self._closing:
            return
        task = asyncio.create_task(self._subscribe(self._connection), name="bridge[aws].subscribe")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _on_failed(self, reason: str, permanent: bool) -> None:  # noqa: FBT001 - callback shape
        self._last_error = reason
        log.warning("aws.connect_failed", client_id=self.client_id, error=reason)
        if permanent:
            self._fail_first(
                SourceError(
                    f"cannot connect to {self.endpoint} as {self.client_id}: {reason} "
                    "(check AWS_IOT_ROOT_CA, AWS_IOT_BRIDGE_CERT, AWS_IOT_BRIDGE_KEY and the "
                    "certificate's policy)"
                )
            )

    def _on_disconnected(self, reason: str) -> None:
        self._connected = False
        if self._closing:
            return
        self._last_error = reason
        log.warning("aws.disconnected", client_id=self.client_id, error=reason)

    async def _subscribe(self, connection: int) -> None:
        client = self._client
        refused: dict[str, str] = {}
        try:
            for start in range(0, len(self.filters), _FILTERS_PER_SUBSCRIBE):
                chunk = self.filters[start : start + _FILTERS_PER_SUBSCRIBE]
                suback = await self._crt_result(client.subscribe(crt.subscribe_packet(chunk)))
                refused |= crt.refused_filters(chunk, suback)
        except Exception as exc:
            # The connection went away mid-way; the next one subscribes again.
            log.warning("aws.subscribe_interrupted", client_id=self.client_id, error=str(exc))
            return
        if connection != self._connection:
            return
        if refused:
            log.error("aws.subscribe_refused", client_id=self.client_id, refused=refused)
            self._fail_first(SourceError(f"AWS IoT refused subscriptions: {refused}"))
            return
        self._connected = True
        log.info("aws.subscribed", client_id=self.client_id, filters=len(self.filters))
        if self._first is not None and not self._first.done():
            self._first.set_result(None)

    async def _crt_result(self, future: concurrent.futures.Future[Any]) -> Any:
        """The result of an awscrt future, awaited without ever cancelling it.

        asyncio.wrap_future cancels the future when the waiter is cancelled, and awscrt
        then fails setting its result ("Exception ignored ... InvalidStateError").
        """
        done = asyncio.Event()
        future.add_done_callback(lambda _future: self._post(done.set))
        await done.wait()
        return future.result()

    def _fail_first(self, error: SourceError) -> None:
        if self._first is not None and not self._first.done() and not self._closing:
            self._first.set_exception(error)
