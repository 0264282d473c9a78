"""A small MQTT 3.1.1 codec: the packets a device endpoint reads and writes.

`PacketDecoder` splits a byte stream into packets and rejects anything malformed or larger
than the endpoint accepts before buffering it; `parse_*` read packet bodies, `encode_*`
build the server's packets.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

__all__ = [
    "MAX_REMAINING_LENGTH",
    "Connect",
    "MalformedPacketError",
    "Packet",
    "PacketDecoder",
    "PacketTooLargeError",
    "PacketType",
    "Publish",
    "encode_connack",
    "encode_packet_id_ack",
    "encode_pingresp",
    "encode_publish",
    "encode_suback",
    "parse_connect",
    "parse_packet_id",
    "parse_publish",
    "parse_subscribe",
    "parse_unsubscribe",
]

# MQTT's variable-length integer tops out at four bytes.
MAX_REMAINING_LENGTH = 268_435_455


class PacketType(enum.IntEnum):
    CONNECT = 1
    CONNACK = 2
    PUBLISH = 3
    PUBACK = 4
    PUBREC = 5
    PUBREL = 6
    PUBCOMP = 7
    SUBSCRIBE = 8
    SUBACK = 9
    UNSUBSCRIBE = 10
    UNSUBACK = 11
    PINGREQ = 12
    PINGRESP = 13
    DISCONNECT = 14


class MalformedPacketError(ValueError):
    """The bytes are not a legal MQTT 3.1.1 packet; the connection must close."""


class PacketTooLargeError(MalformedPacketError):
    """A packet announces more bytes than the endpoint accepts."""


@dataclass(frozen=True)
class Packet:
    """One packet: type, the fixed header's low nibble, and the rest."""

    type: PacketType
    flags: int
    body: bytes


@dataclass(frozen=True)
class Connect:
    """The fields of CONNECT the endpoint uses."""

    protocol_name: str
    protocol_level: int
    clean_session: bool
    keepalive: int
    client_id: str
    username: str | None
    password: bytes | None


@dataclass(frozen=True)
class Publish:
    """A PUBLISH; `packet_id` is None for QoS 0."""

    topic: str
    payload: bytes
    qos: int
    retain: bool
    dup: bool
    packet_id: int | None


# Fixed-header flags 3.1.1 requires for each type other than PUBLISH.
_REQUIRED_FLAGS = {PacketType.PUBREL: 2, PacketType.SUBSCRIBE: 2, PacketType.UNSUBSCRIBE: 2}


class PacketDecoder:
    """Feed bytes in, take whole packets out; raises on the first malformed one.

    Packets before a malformed one are returned first, and the error is raised by
    `raise_pending` (or the next `feed`), so what the endpoint handles does not depend on
    how TCP happened to split the stream.
    """

    def __init__(self, max_packet_size: int = MAX_REMAINING_LENGTH) -> None:
        self.max_packet_size = max_packet_size
        self._buffer = bytearray()
        self._error: MalformedPacketError | None = None

    def feed(self, data: bytes) -> list[Packet]:
        self.raise_pending()
        self._buffer += data
        packets: list[Packet] = []
        try:
            while (packet := self._next()) is not None:
                packets.append(packet)
        except MalformedPacketError as error:
            if not packets:
                raise
            self._error = error
        return packets

    def raise_pending(self) -> None:
        """Raise the error found after the packets the last `feed` returned, if any."""
        if self._error is not None:
            raise self._error

    def _next(self) -> Packet | None:
        buffer = self._buffer
        if len(buffer) < 2:
            return None
        length, multiplier, position = 0, 1, 1
        while True:
            if position >= len(buffer):
                return None
            byte = buffer[position]
            length += (byte & 0x7F) * multiplier
            position += 1
            if not byte & 0x80:
                break
            if position > 4:
                raise MalformedPacketError("remaining length longer than four bytes")
            multiplier *= 128
        if length > self.max_packet_size:
            raise PacketTooLargeError(f"packet of {length} bytes exceeds {self.max_packet_size}")
        if len(buffer) < position + length:
            return None
        header = buffer[0]
        try:
            kind = PacketType(header >> 4)
        except ValueError as error:
            raise MalformedPacketError(f"reserved packet type {header >> 4}") from error
        flags = header & 0x0F
        if kind is not PacketType.PUBLISH and flags != _REQUIRED_FLAGS.get(kind, 0):
            raise MalformedPacketError(f"bad fixed-header flags for {kind.name}")
        body = bytes(buffer[position : position + length])
        del buffer[: position + length]
        return Packet(kind, flags, body)


class _Reader:
    """Sequential reads from a packet body, raising MalformedPacketError on underrun."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.position = 0

    @property
    def remaining(self) -> int:
        return len(self.data) - self.position

    def take(self, size: int) -> bytes:
        if size > self.remaining:
            raise MalformedPacketError("packet ends early")
        chunk = self.data[self.position : self.position + size]
        self.position += size
        return chunk

    def uint8(self) -> int:
        return self.take(1)[0]

    def uint16(self) -> int:
        value: int = struct.unpack("!H", self.take(2))[0]
        return value

    def binary(self) -> bytes:
        return self.take(self.uint16())

    def string(self) -> str:
        raw = self.binary()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise MalformedPacketError("string is not UTF-8") from error
        if "\x00" in text:
            raise MalformedPacketError("string contains U+0000")
        return text


def parse_connect(body: bytes) -> Connect:
    reader = _Reader(body)
    protocol_name = reader.string()
    level = reader.uint8()
    flags = reader.uint8()
    keepalive = reader.uint16()
    if flags & 0x01:
        raise MalformedPacketError("CONNECT reserved flag set")
    client_id = reader.string()
    if flags & 0x04:  # a will: topic and message, which IoT Hub treats as telemetry; unused
        reader.string()
        reader.binary()
    elif flags & 0x38:
        raise MalformedPacketError("will QoS or retain without a will")
    username = reader.string() if flags & 0x80 else None
    if flags & 0x40 and username is None:
        raise MalformedPacketError("password without a user name")
    password = reader.binary() if flags & 0x40 else None
    if reader.remaining:
        raise MalformedPacketError("trailing bytes after CONNECT payload")
    return Connect(
        protocol_name=protocol_name,
        protocol_level=level,
        clean_session=bool(flags & 0x02),
        keepalive=keepalive,
        client_id=client_id,
        username=username,
        password=password,
    )


def parse_publish(flags: int, body: bytes) -> Publish:
    qos = (flags >> 1) & 0x03
    if qos == 3:
        raise MalformedPacketError("PUBLISH with QoS 3")
    reader = _Reader(body)
    topic = reader.string()
    if not topic or "+" in topic or "#" in topic:
        raise MalformedPacketError("PUBLISH topic empty or with wildcards")
    packet_id = reader.uint16() if qos else None
    if packet_id == 0:
        raise MalformedPacketError("packet identifier 0")
    return Publish(
        topic=topic,
        payload=reader.take(reader.remaining),
        qos=qos,
        retain=bool(flags & 0x01),
        dup=bool(flags & 0x08),
        packet_id=packet_id,
    )


def parse_packet_id(body: bytes) -> int:
    """The packet identifier of PUBACK (and the other two-byte acknowledgements)."""
    if len(body) != 2:
        raise MalformedPacketError("acknowledgement must be two bytes")
    value: int = struct.unpack("!H", body)[0]
    return value


def parse_subscribe(body: bytes) -> tuple[int, list[tuple[str, int]]]:
    reader = _Reader(body)
    packet_id = reader.uint16()
    requests = []
    while reader.remaining:
        topic_filter = reader.string()
        options = reader.uint8()
        if options & 0xFC or (options & 0x03) == 3:
            raise MalformedPacketError("SUBSCRIBE requested QoS byte is invalid")
        requests.append((topic_filter, options & 0x03))
    if not requests:
        raise MalformedPacketError("SUBSCRIBE without topic filters")
    return packet_id, requests


def parse_unsubscribe(body: bytes) -> tuple[int, list[str]]:
    reader = _Reader(body)
    packet_id = reader.uint16()
    filters = []
    while reader.remaining:
        filters.append(reader.string())
    if not filters:
        raise MalformedPacketError("UNSUBSCRIBE without topic filters")
    return packet_id, filters


def _remaining_length(length: int) -> bytes:
    encoded = bytearray()
    while True:
        byte, length = length % 128, length // 128
        encoded.append(byte | (0x80 if length else 0))
        if not length:
            return bytes(encoded)


def _packet(kind: PacketType, flags: int, body: bytes) -> bytes:
    return bytes([kind << 4 | flags]) + _remaining_length(len(body)) + body


def _string(text: str) -> bytes:
    raw = text.encode()
    return struct.pack("!H", len(raw)) + raw


def encode_connack(return_code: int, *, session_present: bool = False) -> bytes:
    return _packet(PacketType.CONNACK, 0, bytes([int(session_present), return_code]))


def encode_publish(topic: str, payload: bytes, *, qos: int, packet_id: int | None) -> bytes:
    header = _string(topic) + (struct.pack("!H", packet_id) if qos and packet_id else b"")
    return _packet(PacketType.PUBLISH, qos << 1, header + payload)


def encode_packet_id_ack(kind: PacketType, packet_id: int) -> bytes:
    """PUBACK or UNSUBACK: the type and the identifier acknowledged."""
    return _packet(kind, 0, struct.pack("!H", packet_id))


def encode_suback(packet_id: int, return_codes: list[int]) -> bytes:
    return _packet(PacketType.SUBACK, 0, struct.pack("!H", packet_id) + bytes(return_codes))


def encode_pingresp() -> bytes:
    return _packet(PacketType.PINGRESP, 0, b"")
