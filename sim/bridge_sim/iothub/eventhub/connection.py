"""One client connection: protocol headers, SASL, then AMQP frames until CLOSE."""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bridge.logging import get_logger
from bridge_sim.iothub.eventhub import codec
from bridge_sim.iothub.eventhub.errors import ProtocolError
from bridge_sim.iothub.eventhub.links import LinkHandler
from bridge_sim.iothub.eventhub.log import EventLog
from bridge_sim.iothub.eventhub.ownership import OwnershipRegistry
from bridge_sim.iothub.eventhub.session import SESSION_WINDOW, Session

__all__ = ["AmqpConnection", "EndpointContext"]

_log = get_logger("iothub.eventhub")

# Largest frame we accept; a put-token or management request is a few hundred bytes.
MAX_FRAME_SIZE = 256 * 1024
_CHANNEL_MAX = 255
_SASL_MECHANISMS = [b"ANONYMOUS", b"PLAIN", b"MSSBCBS"]
_LINK_FRAMES = (
    codec.Code.ATTACH,
    codec.Code.FLOW,
    codec.Code.TRANSFER,
    codec.Code.DISPOSITION,
    codec.Code.DETACH,
)
# Field counts of the performatives whose fields we read by position.
_OPEN_FIELDS, _BEGIN_FIELDS = 10, 8


@dataclass(frozen=True)
class EndpointContext:
    """What every connection of one endpoint shares."""

    log: EventLog
    hub_name: str
    shared_access_keys: Mapping[str, str]
    consumer_groups: frozenset[str]
    container_id: str
    owners: OwnershipRegistry = field(default_factory=OwnershipRegistry)
    # Custom Event Hubs served beside the hub's own (routing endpoints), by lower-case name.
    entities: dict[str, EventLog] = field(default_factory=dict)

    def entity(self, name: str) -> tuple[str, EventLog] | None:
        """The entity's canonical name and log: the hub's own, or a custom Event Hub."""
        if name.lower() == self.hub_name.lower():
            return self.hub_name, self.log
        log = self.entities.get(name.lower())
        return None if log is None else (log.hub_name, log)


class AmqpConnection:
    """Serves one TCP (or TLS) connection from an Event Hubs client."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, context: EndpointContext
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.context = context
        self.peer = str(writer.get_extra_info("peername"))
        self.remote_max_frame_size = MAX_FRAME_SIZE
        self.sessions: dict[int, Session] = {}
        self.authorized = False
        self.closed = False
        self.links = LinkHandler(self)
        self._heartbeat: asyncio.Task[None] | None = None

    async def serve(self) -> None:
        """Run the connection to its end; never raises for what the peer does."""
        log = _log.bind(peer=self.peer)
        try:
            if await self._negotiate():
                log.debug("eventhub.connection_opened")
                await self._frame_loop()
        except ProtocolError as error:
            log.warning(
                "eventhub.protocol_error", condition=error.condition.decode(), error=str(error)
            )
            await self.close(error.condition, error.description)
        except (asyncio.IncompleteReadError, ConnectionError, TimeoutError):
            log.debug("eventhub.connection_lost")
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("eventhub.connection_failed")
            await self.close(b"amqp:internal-error", "internal error")
        finally:
            await self._teardown()

    def send(self, channel: int, performative: Any, *, frame_type: int = 0) -> None:
        """Write one frame; asyncio streams write whole buffers, so frames never interleave."""
        if not self.closed:
            self.writer.write(codec.encode_frame(channel, performative, frame_type=frame_type))

    def write(self, data: bytes) -> None:
        """Write frames already encoded (see `wire`), in one call so they stay together."""
        if not self.closed and data:
            self.writer.write(data)

    async def drain(self) -> None:
        """Wait until the socket takes what was written (back-pressure for event pumps)."""
        if not self.closed:
            await self.writer.drain()

    async def close(self, condition: bytes | None = None, description: str | None = None) -> None:
        """Send CLOSE (with an error if given) and shut the socket."""
        if self.closed:
            return
        error = codec.AmqpError(condition=condition, description=description) if condition else None
        with contextlib.suppress(Exception):
            self.send(0, codec.CloseFrame(error=error))
            await asyncio.wait_for(self.writer.drain(), timeout=1)
        self.closed = True
        self.writer.close()

    async def _teardown(self) -> None:
        self.closed = True
        if self._heartbeat is not None:
            self._heartbeat.cancel()
        for session in self.sessions.values():
            self.links.stop_session(session)
        self.sessions.clear()
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()

    async def _negotiate(self) -> bool:
        header = await self.reader.readexactly(8)
        if header == codec.SASL_HEADER:
            self.writer.write(codec.SASL_HEADER)
            self.send(
                0, codec.SaslMechanisms(sasl_server_mechanisms=_SASL_MECHANISMS), frame_type=1
            )
            frame_type, _, body = await self._read_frame()
            try:
                code, fields = codec.decode_frame_body(body) if body else (None, [])
            except codec.FrameDecodeError as error:
                raise ProtocolError(b"amqp:decode-error", f"undecodable frame: {error}") from error
            if frame_type != 1 or code != codec.Code.SASL_INIT:
                raise ProtocolError(b"amqp:connection:framing-error", "expected SASL init")
            outcome = 0 if self._sasl_accepts(fields) else 1
            self.send(0, codec.SaslOutcome(code=outcome, additional_data=None), frame_type=1)
            await self.writer.drain()
            if outcome != 0:
                return False
            header = await self.reader.readexactly(8)
        # Per the spec, a server answers an unsupported header with the one it supports.
        self.writer.write(codec.AMQP_HEADER)
        return header == codec.AMQP_HEADER

    def _sasl_accepts(self, fields: list[Any]) -> bool:
        mechanism = bytes(fields[0]) if fields and fields[0] else b""
        if mechanism != b"PLAIN":
            # ANONYMOUS and MSSBCBS authenticate later, on $cbs.
            return mechanism in _SASL_MECHANISMS
        response = bytes(fields[1] or b"") if len(fields) > 1 else b""
        _, _, credentials = response.partition(b"\0")
        policy, _, key = credentials.partition(b"\0")
        expected = self.context.shared_access_keys.get(policy.decode(errors="replace"))
        self.authorized = expected is not None and expected.encode() == key
        return self.authorized

    async def _read_frame(self) -> tuple[int, int, bytes]:
        header = await self.reader.readexactly(8)
        size, data_offset, frame_type, channel = struct.unpack(">IBBH", header)
        if size < 8 or size > MAX_FRAME_SIZE or data_offset < 2 or data_offset * 4 > size:
            raise ProtocolError(b"amqp:connection:framing-error", f"bad frame header {header!r}")
        rest = await self.reader.readexactly(size - 8)
        return frame_type, channel, rest[data_offset * 4 - 8 :]

    async def _frame_loop(self) -> None:
        while not self.closed:
            frame_type, channel, body = await self._read_frame()
            if not body:
                continue  # an empty frame: the peer's heartbeat
            if frame_type != 0:
                raise ProtocolError(b"amqp:connection:framing-error", "unexpected frame type")
            try:
                code, fields = codec.decode_frame_body(body)
            except codec.FrameDecodeError as error:
                raise ProtocolError(b"amqp:decode-error", f"undecodable frame: {error}") from error
            await self._dispatch(code, channel, fields)

    async def _dispatch(self, code: int, channel: int, fields: list[Any]) -> None:
        try:
            if code == codec.Code.OPEN:
                self._on_open(codec.pad(fields, _OPEN_FIELDS))
            elif code == codec.Code.BEGIN:
                self._on_begin(channel, codec.pad(fields, _BEGIN_FIELDS))
            elif code == codec.Code.END:
                self._on_end(channel)
            elif code == codec.Code.CLOSE:
                await self.close()
            elif code in _LINK_FRAMES:
                session = self.sessions.get(channel)
                # The SDK detaches some links after it has ended their session; ignore those.
                if session is not None:
                    await self.links.dispatch(code, session, fields)
            else:
                raise ProtocolError(b"amqp:not-implemented", f"unknown performative {code:#x}")
        except (IndexError, TypeError, ValueError, AttributeError) as error:
            raise ProtocolError(b"amqp:decode-error", f"malformed performative: {error}") from error

    def _on_open(self, fields: list[Any]) -> None:
        self.remote_max_frame_size = min(int(fields[2] or MAX_FRAME_SIZE), 2**31)
        self.send(
            0,
            codec.OpenFrame(
                container_id=self.context.container_id,
                hostname=None,
                max_frame_size=MAX_FRAME_SIZE,
                channel_max=_CHANNEL_MAX,
                idle_timeout=None,
                outgoing_locales=None,
                incoming_locales=None,
                offered_capabilities=None,
                desired_capabilities=None,
                properties=None,
            ),
        )
        if fields[4]:  # the client's idle timeout, ms
            self._heartbeat = asyncio.create_task(self._send_heartbeats(fields[4] / 2000))

    async def _send_heartbeats(self, interval: float) -> None:
        # The client closes a connection it hears nothing on for its idle timeout.
        while True:
            await asyncio.sleep(interval)
            if self.closed:
                return
            self.writer.write(codec.EMPTY_FRAME)

    def _on_begin(self, channel: int, fields: list[Any]) -> None:
        if channel in self.sessions or channel > _CHANNEL_MAX:
            raise ProtocolError(b"amqp:connection:framing-error", f"channel {channel} unavailable")
        session = Session(channel=channel, next_incoming_id=int(fields[1]))
        session.on_flow(None, int(fields[2]))
        self.sessions[channel] = session
        self.send(
            channel,
            codec.BeginFrame(
                remote_channel=channel,
                next_outgoing_id=session.next_transfer_id,
                incoming_window=SESSION_WINDOW,
                outgoing_window=SESSION_WINDOW,
                handle_max=2**32 - 1,
                offered_capabilities=None,
                desired_capabilities=None,
                properties=None,
            ),
        )

    def _on_end(self, channel: int) -> None:
        session = self.sessions.pop(channel, None)
        if session is not None:
            self.links.stop_session(session)
            self.send(channel, codec.EndFrame(error=None))
