"""A device-to-cloud message as the bytes of an AMQP 1.0 bare message, encoded by hand.

The relay sends thousands a second; building a `proton.Message` per message (a C object,
the properties converted through `pn_data`, freed by the garbage collector) cost more than
the rest of a send. The shape is always the same, as the device SDKs send it: a properties
section (message-id a string, content-type and content-encoding symbols), the application
properties (string to string) and the body as one Data section. The tests decode these
bytes with proton and compare.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping

__all__ = ["encode_message"]

_U32 = struct.Struct(">I")
_NULL = b"\x40"
_PROPERTIES, _APPLICATION, _DATA = b"\x00\x53\x73", b"\x00\x53\x74", b"\x00\x53\x75"


def _variable(small: int, large: int, value: bytes) -> bytes:
    if len(value) <= 255:
        return bytes((small, len(value))) + value
    return bytes((large,)) + _U32.pack(len(value)) + value


def _string(value: str) -> bytes:
    return _variable(0xA1, 0xB1, value.encode())


def _symbol(value: str) -> bytes:
    return _variable(0xA3, 0xB3, value.encode("ascii"))


def _compound(small: int, large: int, count: int, body: bytes) -> bytes:
    if count <= 255 and len(body) < 255:
        return bytes((small, len(body) + 1, count)) + body
    return bytes((large,)) + _U32.pack(len(body) + 4) + _U32.pack(count) + body


def encode_message(
    body: bytes,
    *,
    message_id: str,
    properties: Mapping[str, str],
    content_type: str | None = None,
    content_encoding: str | None = None,
) -> bytes:
    """The sections of one telemetry message, ready to be a transfer's payload."""
    # properties: message-id, user-id, to, subject, reply-to, correlation-id, content-type,
    # content-encoding; the rest left out (a list may end early).
    fields = [_string(message_id), _NULL, _NULL, _NULL, _NULL, _NULL]
    if content_type is not None or content_encoding is not None:
        fields.append(_symbol(content_type) if content_type is not None else _NULL)
    if content_encoding is not None:
        fields.append(_symbol(content_encoding))
    sections = [_PROPERTIES + _compound(0xC0, 0xD0, len(fields), b"".join(fields))]
    if properties:
        pairs = b"".join(_string(key) + _string(value) for key, value in properties.items())
        sections.append(_APPLICATION + _compound(0xC1, 0xD1, 2 * len(properties), pairs))
    sections.append(_DATA + _variable(0xA0, 0xB0, body))
    return b"".join(sections)
