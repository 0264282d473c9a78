"""Fuzz the IoT Hub emulator's MQTT codec: packets or MalformedPacketError, however split.

The first byte says where to split the stream in two; both the split and the whole stream
must give the same packets (parsed as the endpoint parses them) and the same outcome.
"""

from __future__ import annotations

import struct
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bridge_sim.iothub.mqtt import codec

_PARSERS: dict[codec.PacketType, Callable[[codec.Packet], Any]] = {
    codec.PacketType.CONNECT: lambda p: codec.parse_connect(p.body),
    codec.PacketType.PUBLISH: lambda p: codec.parse_publish(p.flags, p.body),
    codec.PacketType.PUBACK: lambda p: codec.parse_packet_id(p.body),
    codec.PacketType.SUBSCRIBE: lambda p: codec.parse_subscribe(p.body),
    codec.PacketType.UNSUBSCRIBE: lambda p: codec.parse_unsubscribe(p.body),
}


def _decode(chunks: list[bytes]) -> tuple[list[Any], bool]:
    decoder, parsed = codec.PacketDecoder(max_packet_size=4096), []
    try:
        for chunk in chunks:
            for packet in decoder.feed(chunk):
                parse = _PARSERS.get(packet.type, lambda p: p)
                parsed.append(parse(packet))  # one by one: those before a bad one count
            decoder.raise_pending()
    except codec.MalformedPacketError:
        return parsed, False
    return parsed, True


def test_one_input(data: bytes) -> None:
    if not data:
        return
    stream, cut = data[1:], data[0] % (len(data))
    whole = _decode([stream])
    split = _decode([stream[:cut], stream[cut:]])
    if whole != split:
        raise AssertionError(f"split at {cut}: {split!r} != {whole!r}")


def _string(text: str) -> bytes:
    return struct.pack("!H", len(text)) + text.encode()


_CONNECT_BODY = (
    _string("MQTT") + bytes([4, 0xC2]) + struct.pack("!H", 60) + _string("dev-1")
    + _string("hub/dev-1/?api-version=2021-04-12") + _string("SharedAccessSignature sr=x")
)  # fmt: skip
SEEDS = (
    b"\x05" + bytes([0x10, len(_CONNECT_BODY)]) + _CONNECT_BODY,
    b"\x03" + codec.encode_publish("devices/dev-1/messages/events/a=1", b"{}", qos=1, packet_id=7),
    b"\x02" + bytes([0x82, 10]) + struct.pack("!H", 1) + _string("a/#") + b"\x01" + b"\xc0\x00",
    b"\x01" + bytes([0xA2, 5]) + struct.pack("!H", 2) + _string("a"),
    b"\x00" + codec.encode_packet_id_ack(codec.PacketType.PUBACK, 7) + b"\xe0\x00",
)

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from fuzz._harness import fuzz

    fuzz("sim_mqtt_codec", test_one_input, SEEDS)
