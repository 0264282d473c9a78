"""The AMQP frame decoder under any bytes: fields or FrameDecodeError, quickly.

The decoder runs on the emulator's event loop: an exception other than FrameDecodeError
ends the connection as an internal error, and a slow decode stalls every connection.
"""

from __future__ import annotations

import base64
import contextlib
import struct
import time
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from bridge_sim.iothub.eventhub import codec


def _open(**fields: Any) -> bytes:
    defaults: dict[str, Any] = {
        "container_id": "c",
        "hostname": "h",
        "max_frame_size": 65536,
        "channel_max": 10,
        "idle_timeout": None,
        "outgoing_locales": None,
        "incoming_locales": None,
        "offered_capabilities": None,
        "desired_capabilities": None,
        "properties": None,
    }
    return codec.encode_frame(0, codec.OpenFrame(**{**defaults, **fields}))[8:]


def _message(body: bytes, properties: dict[str, Any]) -> bytes:
    return codec.encode_message(
        codec.Message(data=[body], application_properties=properties or None)
    )


SEEDS = (
    _open(),
    _open(offered_capabilities=[b"x", b"y"], properties={b"k": 1, b"s": "v"}),
    _message(b"hello", {"a": 1}),
)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A valid encoding with a few bytes changed, cut, or inserted."""
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        position = draw(st.integers(0, len(data)))
        action = draw(st.sampled_from(["set", "cut", "insert"]))
        if action == "set" and position < len(data):
            data[position] = draw(st.integers(0, 255))
        elif action == "cut":
            del data[position:]
        else:
            data[position:position] = draw(st.binary(min_size=1, max_size=4))
    return bytes(data)


any_bytes = mutated() | st.binary(max_size=64)

# Found by this test: the vendored decoder trusts counts. A list announcing 1.6 billion
# items allocated them up front, and an array of 2**32 - 1 nulls (zero bytes each) looped
# for minutes; both blocked the event loop.
_HUGE_LIST = b"\x00S\x10\xd0\x15\n\xa1\x01c\xa1\x01hp\x00\x01\x00\x00`\x00\n@@@@@@"
_NULL_ARRAY = b"\x00S\x10\xc0\x08\x01\xf0" + struct.pack(">II", 5, 2**32 - 1) + b"\x40"
# Found by fuzz/sim_amqp_codec.py (a 2 s timeout after 84 s): an empty array whose size
# claimed 7 bytes. The decoder skips only the count of an empty array, so it read the
# unchecked bytes after it as values, among them a list announcing 1.3 billion items.
_DESYNC = base64.b64decode(
    "AFMQwCQKoQFjoQFocAAB//9gAApAQEDgBwBSdMFQUFBQUFDQUFBQUFBQoP8pACoBswamoUDBAgajAWtUAQ=="
)
# Truncated frames raised IndexError, wrong constructors KeyError and TypeError.
_TRUNCATED = b"\x00S\x10\xc0\x15\n\xa1\x01"


@example(_HUGE_LIST)
@example(_NULL_ARRAY)
@example(_DESYNC)
@example(_TRUNCATED)
@example(b"")
@example(b"\x00S\x10\x45")  # list0: the vendored decoder read past it
@settings(deadline=None)
@given(any_bytes)
def test_frames_decode_or_are_refused_quickly(body: bytes) -> None:
    started = time.monotonic()
    try:
        code, fields = codec.decode_frame_body(body)
    except codec.FrameDecodeError:
        pass
    else:
        assert isinstance(code, int)
        assert isinstance(fields, list)
    assert time.monotonic() - started < 1


@example(_message(b"x", {})[:-1])
@example(b"\x00S\x70\x45")  # a header section that is not a list
# Found by fuzz/sim_amqp_codec.py: a decimal128 whose exponent is out of range raised
# decimal.Overflow (an ArithmeticError, not a ValueError).
@example(b"\x00S!\x94\xc1\x06\x02a\xa1\x01ET\x01\x00Su\xa0\x02hi")
@settings(deadline=None)
@given(any_bytes)
def test_messages_decode_or_are_refused_quickly(payload: bytes) -> None:
    started = time.monotonic()
    with contextlib.suppress(codec.FrameDecodeError):
        codec.decode_message(payload)
    assert time.monotonic() - started < 1


@given(
    st.text(max_size=20),
    st.integers(0, 2**31 - 1),  # the vendored encoder writes it as a signed int
    st.lists(st.binary(min_size=1, max_size=8), max_size=4),
)
def test_open_round_trips(container: str, max_frame_size: int, capabilities: list[bytes]) -> None:
    body = _open(
        container_id=container,
        max_frame_size=max_frame_size,
        offered_capabilities=capabilities or None,
    )
    code, fields = codec.decode_frame_body(body)
    assert code == codec.Code.OPEN
    assert codec.text(fields[0]) == container
    assert fields[2] == max_frame_size
    assert (fields[7] or None) == (capabilities or None)


@given(
    st.binary(max_size=200),
    st.dictionaries(st.text(max_size=5), st.integers(-(2**31), 2**31 - 1), max_size=3),
)
def test_messages_round_trip(body: bytes, properties: dict[str, int]) -> None:
    message = codec.decode_message(_message(body, properties))
    assert bytes(message.data[0]) == body
    decoded = {codec.text(k): v for k, v in (message.application_properties or {}).items()}
    assert decoded == properties
