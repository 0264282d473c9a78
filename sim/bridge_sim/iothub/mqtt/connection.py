"""One authenticated device connection: its packet loop, subscriptions and outbound publishes.

Anything IoT Hub would not accept (QoS 2, a topic outside the device's space, a second
CONNECT, bytes that are not MQTT, a message over the size limit, silence beyond 1.5 times
the keep-alive) closes this connection only.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from typing import TYPE_CHECKING, Any

from bridge.logging import get_logger
from bridge_sim.iothub.mqtt import codec, dispatch
from bridge_sim.iothub.mqtt.codec import PacketType
from bridge_sim.iothub.mqtt.state import ENDPOINT_NAME, ProtocolViolationError, ThrottledError
from bridge_sim.iothub.mqtt.topics import DESIRED_FILTER, allowed_filters, desired_patch_topic

if TYPE_CHECKING:
    from bridge_sim.iothub.mqtt.auth import AuthResult
    from bridge_sim.iothub.mqtt.state import HubState
    from bridge_sim.iothub.mqtt.tls import TlsStream
    from bridge_sim.iothub.subscriptions import DesiredSubscription

__all__ = ["DeviceConnection"]

_log = get_logger("sim.iothub.mqtt.connection")
_SUBACK_FAILURE = 0x80


class DeviceConnection:
    """Serves one device (or module) after a successful CONNECT until either side closes."""

    def __init__(
        self,
        stream: TlsStream,
        decoder: codec.PacketDecoder,
        auth: AuthResult,
        hub: HubState,
        keepalive: int,
    ) -> None:
        self.stream = stream
        self.auth = auth
        self.hub = hub
        self.keepalive = min(keepalive, hub.limits.max_keepalive)
        self.subscriptions: set[str] = set()
        # CONNECT had CleanSession 0: the subscriptions outlive this connection.
        self.persistent = False
        self.close_reason: str | None = None
        self._decoder = decoder
        self._allowed_filters = allowed_filters(auth.device_id, auth.module_id)
        self._packet_ids = itertools.cycle(range(1, 65536))
        self._desired: DesiredSubscription | None = None
        self._loop = asyncio.get_running_loop()
        self._closed = asyncio.Event()

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    # -- outbound ------------------------------------------------------------------------

    def publish(self, topic: str, payload: bytes, *, qos: int = 1) -> None:
        """Send a PUBLISH to the device (QoS 1 is not retried: a lost one is a lost one)."""
        if self.closed:
            return
        packet_id = next(self._packet_ids) if qos else None
        self.stream.write(codec.encode_publish(topic, payload, qos=qos, packet_id=packet_id))

    def subscribed(self, topic_filter: str) -> bool:
        return topic_filter in self.subscriptions

    def close(self, reason: str, *, abort: bool = False) -> None:
        """Close the connection; the packet loop notices and ends."""
        if self.closed:
            return
        self.close_reason = reason
        self._closed.set()
        if self._desired is not None:
            self._desired.close()
        if abort:
            self.stream.abort()
        else:
            self.stream.close()

    # -- the packet loop -----------------------------------------------------------------

    async def run(self, pending: list[codec.Packet]) -> None:
        """Handle `pending` (read with CONNECT), then every packet until the connection ends."""
        expiry = self._close_at_token_expiry()
        try:
            await self._handle_all(pending)
            self._decoder.raise_pending()
            while not self.closed:
                data = await self._read()
                if not data:
                    self.close(self.close_reason or "peer closed")
                    break
                await self._handle_all(self._decoder.feed(data))
                self._decoder.raise_pending()
        except codec.MalformedPacketError as error:
            self.close(f"malformed packet: {error}", abort=True)
        except ProtocolViolationError as error:
            self.close(f"protocol violation: {error}", abort=True)
        except ThrottledError as error:
            self.close(str(error))
        except ConnectionError as error:
            self.close(f"connection error: {error}", abort=True)
        finally:
            if expiry is not None:
                expiry.cancel()
            self.close(self.close_reason or "ended")
            _log.info(
                "sim.iothub.device_connection_closed",
                device_id=self.auth.device_id,
                module_id=self.auth.module_id,
                reason=self.close_reason,
            )

    def _close_at_token_expiry(self) -> asyncio.TimerHandle | None:
        # IoT Hub disconnects a SAS connection when its token lapses; the SDK reconnects
        # with a fresh token before that happens.
        if self.auth.token_expiry is None:
            return None
        delay = max(0.0, self.auth.token_expiry - time.time())
        return self._loop.call_later(delay, self.close, "SAS token expired")

    async def _read(self) -> bytes:
        # `close` shuts the transport, which ends a pending read with EOF.
        timeout = self.keepalive * 1.5 if self.keepalive else None
        try:
            async with asyncio.timeout(timeout):
                return await self.stream.read()
        except TimeoutError:
            self.close_reason = "keep-alive expired"
            return b""

    async def _handle_all(self, packets: list[codec.Packet]) -> None:
        for packet in packets:
            if self.closed:
                return
            delay = self.hub.faults.delay_for(ENDPOINT_NAME)
            if delay > 0:
                await asyncio.sleep(delay)
            await self._handle(packet)
        await self.stream.drain()

    async def _handle(self, packet: codec.Packet) -> None:
        kind = packet.type
        if kind is PacketType.PUBLISH:
            publish = codec.parse_publish(packet.flags, packet.body)
            if publish.qos == 2:
                raise ProtocolViolationError("QoS 2 is not supported")
            await dispatch.handle_publish(self, publish)
        elif kind is PacketType.PUBACK:
            codec.parse_packet_id(packet.body)
        elif kind is PacketType.SUBSCRIBE:
            self._subscribe(packet.body)
        elif kind is PacketType.UNSUBSCRIBE:
            self._unsubscribe(packet.body)
        elif kind is PacketType.PINGREQ:
            self.stream.write(codec.encode_pingresp())
        elif kind is PacketType.DISCONNECT:
            self.close("device disconnected")
        else:
            raise ProtocolViolationError(f"unexpected {kind.name} from a device")
        self.hub.registry_activity(self.auth)

    def restore(self, filters: set[str]) -> None:
        """Resume a persistent session's subscriptions (CONNECT with CleanSession 0)."""
        for topic_filter in filters:
            self._add_subscription(topic_filter)

    def _add_subscription(self, topic_filter: str) -> None:
        self.subscriptions.add(topic_filter)
        if topic_filter == DESIRED_FILTER and self._desired is None:
            self._desired = self.hub.registry.subscribe_desired(
                self.auth.device_id, self.auth.module_id, callback=self._desired_from_thread
            )

    def _subscribe(self, body: bytes) -> None:
        packet_id, requests = codec.parse_subscribe(body)
        codes = []
        for topic_filter, qos in requests:
            if topic_filter not in self._allowed_filters:
                codes.append(_SUBACK_FAILURE)
                continue
            self._add_subscription(topic_filter)
            # IoT Hub grants at most QoS 1 and answers a QoS 2 request with 1.
            codes.append(min(qos, 1))
        self.stream.write(codec.encode_suback(packet_id, codes))

    def _unsubscribe(self, body: bytes) -> None:
        packet_id, filters = codec.parse_unsubscribe(body)
        for topic_filter in filters:
            self.subscriptions.discard(topic_filter)
            if topic_filter == DESIRED_FILTER and self._desired is not None:
                self._desired.close()
                self._desired = None
        self.stream.write(codec.encode_packet_id_ack(PacketType.UNSUBACK, packet_id))

    # -- desired properties --------------------------------------------------------------

    def _desired_from_thread(self, patch: dict[str, Any]) -> None:
        # Registry writers may run on any thread; publish on ours.
        self._loop.call_soon_threadsafe(self._push_desired, patch)

    def _push_desired(self, patch: dict[str, Any]) -> None:
        if self.closed or not self.subscribed(DESIRED_FILTER):
            return
        version = int(patch.get("$version", 0))
        # The transport sends without a drain; flow control is moot for one small patch.
        self.publish(desired_patch_topic(version), json.dumps(patch).encode())
