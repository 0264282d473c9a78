"""AMQP 1.0 types and frames, borrowed from azure-eventhub's pure-Python AMQP stack.

Why borrow a private module: this endpoint exists to satisfy `EventHubConsumerClient`, and
that client parses frames with `azure.eventhub._pyamqp`. Encoding with the same code means
what we send is exactly what it reads, field order and padding included (it reads fixed
positions in OPEN, BEGIN and ATTACH and fails on trailing nulls left out). The package pins
azure-eventhub; every import of `_pyamqp` lives in this module so an upgrade that moves
things breaks one file, and the rest of the endpoint sees plain functions.
"""

from __future__ import annotations

import struct
from enum import IntEnum
from typing import Any

from azure.eventhub._pyamqp import _decode, _encode, constants, endpoints, error, message, outcomes
from azure.eventhub._pyamqp import performatives as perf
from azure.eventhub._pyamqp.types import TYPE, VALUE, AMQPTypes

__all__ = [
    "AMQP_HEADER",
    "EMPTY_FRAME",
    "SASL_HEADER",
    "Accepted",
    "AmqpError",
    "AttachFrame",
    "BeginFrame",
    "CloseFrame",
    "Code",
    "DetachFrame",
    "DispositionFrame",
    "EndFrame",
    "FlowFrame",
    "FrameDecodeError",
    "Message",
    "OpenFrame",
    "Properties",
    "Rejected",
    "SaslInit",
    "SaslMechanisms",
    "SaslOutcome",
    "Source",
    "Target",
    "TransferFrame",
    "decode_frame_body",
    "decode_message",
    "encode_frame",
    "encode_message",
    "pad",
    "text",
    "typed",
]

AMQP_HEADER: bytes = constants.HEADER_FRAME
SASL_HEADER: bytes = constants.SASL_HEADER_FRAME
EMPTY_FRAME: bytes = constants.EMPTY_FRAME
AMQP_FRAME_TYPE = 0
SASL_FRAME_TYPE = 1


class Code(IntEnum):
    """Descriptor codes of the performatives, as `decode_frame_body` reports them."""

    OPEN = 0x10
    BEGIN = 0x11
    ATTACH = 0x12
    FLOW = 0x13
    TRANSFER = 0x14
    DISPOSITION = 0x15
    DETACH = 0x16
    END = 0x17
    CLOSE = 0x18
    SASL_MECHANISMS = 0x40
    SASL_INIT = 0x41
    SASL_OUTCOME = 0x44


OpenFrame: Any = perf.OpenFrame
BeginFrame: Any = perf.BeginFrame
AttachFrame: Any = perf.AttachFrame
FlowFrame: Any = perf.FlowFrame
TransferFrame: Any = perf.TransferFrame
DispositionFrame: Any = perf.DispositionFrame
DetachFrame: Any = perf.DetachFrame
EndFrame: Any = perf.EndFrame
CloseFrame: Any = perf.CloseFrame
SaslMechanisms: Any = perf.SASLMechanism
SaslInit: Any = perf.SASLInit
SaslOutcome: Any = perf.SASLOutcome
AmqpError: Any = error.AMQPError
Source: Any = endpoints.Source
Target: Any = endpoints.Target
Message: Any = message.Message
Properties: Any = message.Properties
Accepted: Any = outcomes.Accepted
Rejected: Any = outcomes.Rejected


def encode_frame(channel: int, performative: Any, *, frame_type: int = AMQP_FRAME_TYPE) -> bytes:
    """One complete frame: header, channel, the performative with every field present."""
    header, body = _encode.encode_frame(performative, frame_type=bytes([frame_type]))
    return bytes(header) + struct.pack(">H", channel) + bytes(body or b"")


class FrameDecodeError(ValueError):
    """The bytes are not a well-formed AMQP performative or message; the connection closes."""


# Encoded width of each AMQP 1.0 primitive format code (section 1.6 of the spec).
_FIXED = {
    **dict.fromkeys((0x40, 0x41, 0x42, 0x43, 0x44, 0x45), 0),
    **dict.fromkeys(range(0x50, 0x57), 1),
    **dict.fromkeys((0x60, 0x61), 2),
    **dict.fromkeys((0x70, 0x71, 0x72), 4),
    **dict.fromkeys((0x80, 0x81, 0x82, 0x83), 8),
    **dict.fromkeys((0x94, 0x98), 16),
}
_VARIABLE = {0xA0: 1, 0xA1: 1, 0xA3: 1, 0xB0: 4, 0xB1: 4, 0xB3: 4}
_COMPOUND = {0xC0: 1, 0xC1: 1, 0xD0: 4, 0xD1: 4}
_ARRAY = {0xE0: 1, 0xF0: 4}
# Deeper than any performative or message the SDK sends, and far inside the recursion the
# vendored decoder needs.
_MAX_DEPTH = 24
_LIST0 = 0x45


class _Checker:
    """Walks an encoding as the vendored decoder will, without building anything.

    That decoder trusts counts and ignores sizes: a 20-byte frame announcing 2**32 list
    items or null array elements made it allocate or loop for minutes, blocking the
    emulator's event loop. Here every count must fit its size, every size the bytes there
    are, and the items must end exactly where the size says, so the decoder's reading and
    the declared layout agree (otherwise it reads bytes nobody checked as values).
    """

    def __init__(self, data: bytes) -> None:
        self.data = data

    def number(self, position: int, width: int) -> int:
        end = position + width
        if end > len(self.data):
            raise FrameDecodeError("encoding ends early")
        return int.from_bytes(self.data[position:end], "big")

    def value(self, position: int, depth: int = 0) -> int:
        """Where the value starting at `position` (at its format code) ends."""
        if depth > _MAX_DEPTH:
            raise FrameDecodeError("values nested too deeply")
        code = self.number(position, 1)
        if code == 0x00:  # described: descriptor, then the value
            return self.value(self.value(position + 1, depth + 1), depth + 1)
        return self.body(code, position + 1, depth)

    def body(self, code: int, position: int, depth: int) -> int:
        """Where a value of format `code` whose bytes start at `position` ends."""
        if code in _FIXED:
            end = position + _FIXED[code]
        elif code in _VARIABLE:
            width = _VARIABLE[code]
            end = position + width + self.number(position, width)
        elif code in _COMPOUND:
            width = _COMPOUND[code]
            end, count = self.sized(position, width)
            if code in (0xC1, 0xD1):
                count -= count % 2  # the decoder reads count // 2 pairs
            item = position + 2 * width
            for _ in range(count):
                item = self.value(item, depth + 1)
            self.agree(item, end)
        elif code in _ARRAY:
            width = _ARRAY[code]
            end, count = self.sized(position, width)
            item = position + 2 * width
            if count:
                element = self.number(item, 1)
                if element == 0x00:
                    raise FrameDecodeError("arrays of described types are not supported")
                item += 1
                for _ in range(count):
                    item = self.body(element, item, depth + 1)
            self.agree(item, end)
        else:
            raise FrameDecodeError(f"unknown format code {code:#04x}")
        if end > len(self.data):
            raise FrameDecodeError("encoding ends early")
        return end

    def sized(self, position: int, width: int) -> tuple[int, int]:
        """The end a compound's size gives, and its count (at most one item per byte)."""
        size, count = self.number(position, width), self.number(position + width, width)
        end = position + width + size
        if count > size or end > len(self.data):
            raise FrameDecodeError(f"{count} items in {size} bytes")
        return end, count

    def agree(self, items_end: int, end: int) -> None:
        if items_end != end:
            raise FrameDecodeError("items do not fill the size their compound declares")


def _performative(body: bytes) -> None:
    checker = _Checker(body)
    if body[:2] != b"\x00\x53" or len(body) < 4 or body[3] not in (0xC0, 0xD0):
        raise FrameDecodeError("a frame body must be a described list")
    checker.value(0)


def decode_frame_body(body: bytes) -> tuple[int, list[Any]]:
    """Performative code and its fields; for TRANSFER the payload is the last item.

    Raises FrameDecodeError when the bytes are not a well-formed performative.
    """
    if len(body) == 4 and body[:2] == b"\x00\x53" and body[3] == _LIST0:
        # Every field left out (rhea sends END and CLOSE so); the vendored decoder
        # cannot read an empty list.
        return body[2], []
    _performative(body)
    try:
        code, fields = _decode.decode_frame(memoryview(body))
    except (ArithmeticError, IndexError, KeyError, TypeError, ValueError, struct.error) as error:
        raise FrameDecodeError(f"undecodable frame: {error!r}") from error
    return int(code), list(fields)


def pad(fields: list[Any], size: int) -> list[Any]:
    """Fields with the trailing nulls a peer may leave out put back, so positions hold."""
    return list(fields) + [None] * (size - len(fields))


def text(value: Any) -> str | None:
    """A decoded string or symbol (the decoder gives bytes) as `str`."""
    if value is None:
        return None
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", "replace")
    return str(value)


def decode_message(payload: bytes) -> Any:
    """A bare message (`Message` named tuple) from a transfer's payload.

    Raises FrameDecodeError when the bytes are not a well-formed sequence of sections.
    """
    checker, position = _Checker(payload), 0
    while position < len(payload):
        if payload[position : position + 2] != b"\x00\x53" or position + 3 >= len(payload):
            raise FrameDecodeError("a message section must be a described value")
        position = checker.value(position)
    try:
        return _decode.decode_payload(memoryview(payload))
    except (ArithmeticError, IndexError, KeyError, TypeError, ValueError, struct.error) as error:
        raise FrameDecodeError(f"undecodable message: {error!r}") from error


def encode_message(amqp_message: Any) -> bytes:
    """The sections of a `Message`, ready to be a transfer's payload."""
    output = bytearray()
    _encode.encode_payload(output, amqp_message)
    return bytes(output)


_TYPES = {
    "long": AMQPTypes.long,
    "string": AMQPTypes.string,
    "symbol": AMQPTypes.symbol,
    "timestamp": AMQPTypes.timestamp,
    "int": AMQPTypes.int,
    "boolean": AMQPTypes.boolean,
    "array_string": AMQPTypes.array,
}


def typed(amqp_type: str, value: Any) -> dict[str, Any]:
    """A value the encoder writes as `amqp_type` instead of guessing from the Python type."""
    if amqp_type == "array_string":
        return {TYPE: AMQPTypes.array, VALUE: [{TYPE: AMQPTypes.string, VALUE: v} for v in value]}
    return {TYPE: _TYPES[amqp_type], VALUE: value}
