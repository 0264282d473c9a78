"""MQTT over WebSockets: IoT Hub's port 443, path `/$iothub/websocket`, subprotocol `mqtt`.

The SDKs offer it for networks that block 8883 (azure-iot-device `websockets=True`, Node's
`MqttWs`). After TLS the client sends an HTTP/1.1 upgrade (RFC 6455); the server answers
101 with the `mqtt` subprotocol, and from then on every MQTT byte travels in binary frames
(masked from the client, unmasked from the server). Frame and packet boundaries need not
line up. A ping is answered with a pong; a close frame ends the stream.
"""

from __future__ import annotations

import base64
import hashlib
import struct

from bridge_sim.iothub.mqtt.tls import TlsError, TlsStream

__all__ = ["WEBSOCKET_PATH", "WEBSOCKET_PORT", "WebSocketError", "WebSocketStream"]

WEBSOCKET_PORT = 443
WEBSOCKET_PATH = "/$iothub/websocket"
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_MAX_REQUEST = 16 * 1024
_CONTINUATION, _TEXT, _BINARY, _CLOSE, _PING, _PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


class WebSocketError(TlsError):
    """The client's upgrade request or frames are not what IoT Hub accepts."""


def _frame(opcode: int, payload: bytes) -> bytes:
    size = len(payload)
    if size < 126:
        header = struct.pack("!BB", 0x80 | opcode, size)
    elif size < 1 << 16:
        header = struct.pack("!BBH", 0x80 | opcode, 126, size)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 127, size)
    return header + payload


class WebSocketStream(TlsStream):
    """The TLS stream of an upgraded connection, carrying MQTT in binary frames."""

    _buffer: bytearray
    _closing: bool

    @classmethod
    async def upgrade(cls, tls: TlsStream) -> WebSocketStream:
        """Read the upgrade request and answer it; raise WebSocketError when refused."""
        stream = cls(tls._connection, tls._reader, tls._writer)
        stream._buffer = bytearray()
        stream._closing = False
        request = bytearray()
        while b"\r\n\r\n" not in request:
            data = await TlsStream.read(stream)
            if not data:
                raise WebSocketError("peer closed before the upgrade request")
            request += data
            if len(request) > _MAX_REQUEST:
                raise WebSocketError("upgrade request too large")
        head, _, rest = bytes(request).partition(b"\r\n\r\n")
        stream._buffer += rest
        key, refusal = _check_request(head.decode("latin-1"))
        if refusal is not None:
            TlsStream.write(stream, refusal.encode("latin-1"))
            await TlsStream.drain(stream)
            raise WebSocketError(refusal.splitlines()[0])
        accept = base64.b64encode(hashlib.sha1(key.encode() + _GUID).digest()).decode()  # noqa: S324
        TlsStream.write(
            stream,
            (
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n"
                "Sec-WebSocket-Protocol: mqtt\r\n\r\n"
            ).encode(),
        )
        await TlsStream.drain(stream)
        return stream

    async def read(self) -> bytes:
        """The MQTT bytes of the frames available now; b"" once the peer closed."""
        while True:
            payload = self._take_frames()
            if payload is None:
                return b""
            if payload:
                return payload
            data = await super().read()
            if not data:
                return b""
            self._buffer += data

    def _take_frames(self) -> bytes | None:
        out = bytearray()
        while True:
            frame = self._next_frame()
            if frame is None:
                return bytes(out)
            opcode, payload = frame
            if opcode in {_BINARY, _CONTINUATION}:
                out += payload
            elif opcode == _PING:
                super().write(_frame(_PONG, payload))
            elif opcode == _CLOSE:
                if not self._closing:
                    self._closing = True
                    super().write(_frame(_CLOSE, payload[:2]))
                return bytes(out) or None
            elif opcode == _TEXT:
                raise WebSocketError("text frames do not carry MQTT")

    def _next_frame(self) -> tuple[int, bytes] | None:
        buffer = self._buffer
        if len(buffer) < 2:
            return None
        opcode = buffer[0] & 0x0F
        masked = buffer[1] & 0x80
        size = buffer[1] & 0x7F
        offset = 2
        if size == 126:
            if len(buffer) < 4:
                return None
            (size,) = struct.unpack_from("!H", buffer, 2)
            offset = 4
        elif size == 127:
            if len(buffer) < 10:
                return None
            (size,) = struct.unpack_from("!Q", buffer, 2)
            offset = 10
        if not masked:
            raise WebSocketError("client frames must be masked")
        if len(buffer) < offset + 4 + size:
            return None
        mask = buffer[offset : offset + 4]
        start = offset + 4
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(buffer[start : start + size]))
        del buffer[: start + size]
        return opcode, payload

    def write(self, data: bytes) -> None:
        """Queue MQTT bytes as one binary frame."""
        if not self._closing:
            super().write(_frame(_BINARY, data))

    def close(self) -> None:
        """Send a close frame (1000) before closing TLS and the socket."""
        if not self._closing:
            self._closing = True
            super().write(_frame(_CLOSE, struct.pack("!H", 1000)))
        super().close()


def _check_request(head: str) -> tuple[str, str | None]:
    lines = head.split("\r\n")
    parts = lines[0].split(" ")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    key = headers.get("sec-websocket-key", "")
    protocols = {p.strip() for p in headers.get("sec-websocket-protocol", "").split(",")}
    if len(parts) != 3 or parts[0] != "GET" or parts[1].split("?")[0] != WEBSOCKET_PATH:
        return key, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    upgrade = headers.get("upgrade", "").lower() == "websocket"
    if not upgrade or not key or "mqtt" not in protocols:
        return key, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    return key, None
