"""Fuzz the IoT Hub emulator's AMQP decoder: fields or FrameDecodeError, never slow.

The first byte says whether the rest is a frame body or a message payload. libFuzzer's
`-timeout` (default here: 2 seconds) reports inputs that stall the decoder.
"""

from __future__ import annotations

import sys
from pathlib import Path

from bridge_sim.iothub.eventhub import codec


def test_one_input(data: bytes) -> None:
    if not data:
        return
    try:
        if data[0] & 1:
            code, fields = codec.decode_frame_body(data[1:])
            if not isinstance(code, int) or not isinstance(fields, list):
                raise AssertionError((code, fields))
        else:
            codec.decode_message(data[1:])
    except codec.FrameDecodeError:
        return


def _open() -> bytes:
    frame = codec.OpenFrame(
        container_id="c",
        hostname="h",
        max_frame_size=65536,
        channel_max=10,
        idle_timeout=None,
        outgoing_locales=None,
        incoming_locales=None,
        offered_capabilities=[b"x"],
        desired_capabilities=None,
        properties={b"k": 1},
    )
    return codec.encode_frame(0, frame)[8:]


SEEDS = (
    b"\x01" + _open(),
    b"\x00" + codec.encode_message(codec.Message(data=[b"hi"], application_properties={"a": 1})),
)

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from fuzz._harness import fuzz

    if not any(arg.startswith("-timeout=") for arg in sys.argv):
        sys.argv.append("-timeout=2")
    fuzz("sim_amqp_codec", test_one_input, SEEDS)
