"""The emulator's MQTT codec under any bytes: packets or MalformedPacketError, however split.

The device endpoint closes a connection on MalformedPacketError; any other exception
would be an emulator bug, not the device's.
"""

from __future__ import annotations

import contextlib
import itertools
import struct
from collections.abc import Callable
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from bridge_sim.iothub.mqtt import codec
from iothub_emulator.test_device_raw import connect_packet

SEEDS = (
    connect_packet("dev-1", username="hub/dev-1/?api-version=2021-04-12", password="sas"),
    codec.encode_publish("devices/dev-1/messages/events/", b"{}", qos=1, packet_id=7),
    codec.encode_publish("a/b", b"x", qos=0, packet_id=None),
    bytes([0x82]) + bytes([8]) + struct.pack("!H", 1) + struct.pack("!H", 3) + b"a/#" + b"\x01",
    bytes([0xA2, 5]) + struct.pack("!H", 2) + struct.pack("!H", 1) + b"a",
    codec.encode_packet_id_ack(codec.PacketType.PUBACK, 7),
    bytes([0xC0, 0]),
    bytes([0xE0, 0]),
)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(b"".join(draw(st.lists(st.sampled_from(SEEDS), min_size=1, max_size=3))))
    for _ in range(draw(st.integers(0, 3))):
        position = draw(st.integers(0, len(data)))
        action = draw(st.sampled_from(["set", "cut", "insert"]))
        if action == "set" and position < len(data):
            data[position] = draw(st.integers(0, 255))
        elif action == "cut":
            del data[position:]
        else:
            data[position:position] = draw(st.binary(min_size=1, max_size=3))
    return bytes(data)


streams = mutated() | st.binary(max_size=64)

_PARSERS: dict[codec.PacketType, Callable[[codec.Packet], Any]] = {
    codec.PacketType.CONNECT: lambda p: codec.parse_connect(p.body),
    codec.PacketType.PUBLISH: lambda p: codec.parse_publish(p.flags, p.body),
    codec.PacketType.PUBACK: lambda p: codec.parse_packet_id(p.body),
    codec.PacketType.SUBSCRIBE: lambda p: codec.parse_subscribe(p.body),
    codec.PacketType.UNSUBSCRIBE: lambda p: codec.parse_unsubscribe(p.body),
}


def _decode(stream: bytes, cuts: list[int]) -> tuple[list[Any], bool]:
    """Packets parsed as the endpoint would, feeding `stream` split at `cuts`."""
    decoder, parsed = codec.PacketDecoder(max_packet_size=1024), []
    bounds = [0, *sorted(c % (len(stream) + 1) for c in cuts), len(stream)]
    try:
        for start, end in itertools.pairwise(bounds):
            for packet in decoder.feed(stream[start:end]):
                parse = _PARSERS.get(packet.type, lambda p: p)
                parsed.append(parse(packet))
            decoder.raise_pending()
    except codec.MalformedPacketError:
        return parsed, False
    return parsed, True


# Found by this test: a malformed packet after a good one in the same read discarded the
# good one, so what the endpoint handled depended on how TCP split the stream.
@example(b"\xc0\x00\xf0\x00", [2])  # PINGREQ, then a reserved packet type
@given(streams, st.lists(st.integers(0, 200), max_size=5))
def test_streams_decode_the_same_however_they_are_split(stream: bytes, cuts: list[int]) -> None:
    whole = _decode(stream, [])
    assert _decode(stream, cuts) == whole
    assert _decode(stream, list(range(len(stream)))) == whole


@given(st.sampled_from(list(_PARSERS)), st.integers(0, 15), st.binary(max_size=40) | mutated())
def test_every_body_parses_or_is_malformed(kind: codec.PacketType, flags: int, body: bytes) -> None:
    with contextlib.suppress(codec.MalformedPacketError):
        _PARSERS[kind](codec.Packet(kind, flags, body))


@given(
    st.text(st.characters(blacklist_characters="+#\x00", blacklist_categories=["Cs"]), min_size=1),
    st.binary(max_size=300),
    st.integers(0, 1),
    st.integers(1, 65535),
)
def test_publish_round_trips(topic: str, payload: bytes, qos: int, packet_id: int) -> None:
    stream = codec.encode_publish(topic, payload, qos=qos, packet_id=packet_id if qos else None)
    (publish,), complete = _decode(stream, [])
    assert complete
    assert (publish.topic, publish.payload, publish.qos) == (topic, payload, qos)
    assert publish.packet_id == (packet_id if qos else None)
