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
    "Message",
    "OpenFrame",
    "Properties",
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


def encode_frame(channel: int, performative: Any, *, frame_type: int = AMQP_FRAME_TYPE) -> bytes:
    """One complete frame: header, channel, the performative with every field present."""
    header, body = _encode.encode_frame(performative, frame_type=bytes([frame_type]))
    return bytes(header) + struct.pack(">H", channel) + bytes(body or b"")


def decode_frame_body(body: bytes) -> tuple[int, list[Any]]:
    """Performative code and its fields; for TRANSFER the payload is the last item."""
    code, fields = _decode.decode_frame(memoryview(body))
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
    """A bare message (`Message` named tuple) from a transfer's payload."""
    return _decode.decode_payload(memoryview(payload))


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
