"""The frames the device endpoint sends once per message, encoded by hand.

`codec.encode_frame` goes through azure-eventhub's generic encoder (a dict per value),
which costs more than the rest of a telemetry delivery; a relay at thousands of messages
a second gets a DISPOSITION each. These write the same performative (the tests compare
them with `codec`), with every field present.
"""

from __future__ import annotations

import struct

__all__ = ["accepted_disposition", "link_flow"]

_U32 = struct.Struct(">I")
_ACCEPTED = b"\x00\x53\x24\x45"  # accepted, an empty list
_DISPOSITION = b"\x00\x53\x15"
_FLOW = b"\x00\x53\x13"
_TRUE, _FALSE, _NULL = b"\x41", b"\x42", b"\x40"


def _uint(value: int) -> bytes:
    if value == 0:
        return b"\x43"
    if value <= 255:
        return b"\x52" + bytes((value,))
    return b"\x70" + _U32.pack(value & 0xFFFFFFFF)


def _list(count: int, body: bytes) -> bytes:
    if count <= 255 and len(body) < 255:
        return bytes((0xC0, len(body) + 1, count)) + body
    return b"\xd0" + _U32.pack(len(body) + 4) + _U32.pack(count) + body


def _frame(channel: int, body: bytes) -> bytes:
    return _U32.pack(len(body) + 8) + b"\x02\x00" + channel.to_bytes(2, "big") + body


def accepted_disposition(channel: int, first: int, last: int | None = None) -> bytes:
    """DISPOSITION from the receiver: deliveries `first`..`last` accepted and settled."""
    fields = b"".join(
        (_TRUE, _uint(first), _uint(first if last is None else last), _TRUE, _ACCEPTED, _FALSE)
    )
    return _frame(channel, _DISPOSITION + _list(6, fields))


def link_flow(
    channel: int,
    *,
    next_incoming_id: int,
    incoming_window: int,
    next_outgoing_id: int,
    outgoing_window: int,
    handle: int,
    delivery_count: int,
    link_credit: int,
) -> bytes:
    """FLOW for one link: our session window and the credit we give its sender."""
    fields = b"".join(
        (
            _uint(next_incoming_id),
            _uint(incoming_window),
            _uint(next_outgoing_id),
            _uint(outgoing_window),
            _uint(handle),
            _uint(delivery_count),
            _uint(link_credit),
            _NULL,  # available
            _FALSE,  # drain
            _FALSE,  # echo
            _NULL,  # properties
        )
    )
    return _frame(channel, _FLOW + _list(11, fields))
