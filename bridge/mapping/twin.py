"""IoT Hub's rules for twin documents: property names, depth and sizes."""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = [
    "MAX_DEPTH",
    "MAX_DESIRED_BYTES",
    "MAX_KEY_BYTES",
    "MAX_REPORTED_BYTES",
    "MAX_STRING_BYTES",
    "MAX_TAGS_BYTES",
    "decode_property_name",
    "document_depth",
    "document_size",
    "encode_document",
    "encode_property_name",
    "refused_entry",
]

MAX_DEPTH = 10
MAX_DESIRED_BYTES = 32 * 1024
MAX_REPORTED_BYTES = 32 * 1024
MAX_TAGS_BYTES = 8 * 1024
MAX_KEY_BYTES = 1024  # a property name, UTF-8
MAX_STRING_BYTES = 4096  # a string value, UTF-8
_PATH_SHOWN = 80

# IoT Hub refuses '.', '$', '#' and space in property names, and control characters.
# Percent-encoding them (and '%' itself, so decoding is exact) keeps names readable and
# reversible; the mirror must use the same encoding.
_FORBIDDEN = re.compile(r"[.$# %\x00-\x1f\x7f-\x9f]")


def encode_property_name(name: str) -> str:
    """The name with every character IoT Hub refuses written as %XX."""
    return _FORBIDDEN.sub(lambda match: f"%{ord(match.group()):02X}", name)


def decode_property_name(name: str) -> str:
    """Undo `encode_property_name`."""
    return re.sub(r"%([0-9A-F]{2})", lambda match: chr(int(match.group(1), 16)), name)


def encode_document(document: Any, renamed: list[str], path: str = "") -> Any:
    """A copy of the JSON document with every object key encoded; changed keys go to `renamed`."""
    if isinstance(document, dict):
        encoded: dict[str, Any] = {}
        for key, value in document.items():
            new_key = encode_property_name(str(key))
            if new_key != key:
                renamed.append(f"{path}{key}")
            encoded[new_key] = encode_document(value, renamed, f"{path}{new_key}/")
        return encoded
    if isinstance(document, list):
        return [encode_document(item, renamed, path) for item in document]
    return document


def document_depth(document: Any) -> int:
    """Objects and arrays nested below the section root: `{"a": {"b": 1}}` has depth 1."""
    return max(_containers(document) - 1, 0)


def _containers(document: Any) -> int:
    if isinstance(document, dict):
        return 1 + max((_containers(value) for value in document.values()), default=0)
    if isinstance(document, list):
        return 1 + max((_containers(item) for item in document), default=0)
    return 0


def document_size(document: Any) -> int:
    """Size in bytes as IoT Hub counts it: compact UTF-8 JSON."""
    return len(json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode())


def refused_entry(document: Any, path: str = "") -> str | None:
    """What IoT Hub would refuse in a twin section besides its size and depth, described:
    the first property name that is empty or over 1 KB, or string value over 4 KB (UTF-8);
    None if none.

    An AWS shadow holds any of them within its 8 KB (and percent-encoding a name can
    triple it), so a thing AWS accepts can carry one.
    """
    if isinstance(document, dict):
        for key, value in document.items():
            where = f"{path}{key}"
            if not key:
                return f"an empty property name at {_shown(where or '/')}"
            if len(key.encode()) > MAX_KEY_BYTES:
                return (
                    f"property name {_shown(where)} is {len(key.encode())} bytes, over IoT "
                    f"Hub's {MAX_KEY_BYTES}"
                )
            found = refused_entry(value, f"{where}/")
            if found:
                return found
    elif isinstance(document, list):
        for index, item in enumerate(document):
            found = refused_entry(item, f"{path}{index}/")
            if found:
                return found
    elif isinstance(document, str) and len(document.encode()) > MAX_STRING_BYTES:
        return (
            f"the value of {_shown(path.rstrip('/'))} is {len(document.encode())} bytes, over "
            f"IoT Hub's {MAX_STRING_BYTES} for a string"
        )
    return None


def _shown(path: str) -> str:
    return repr(path if len(path) <= _PATH_SHOWN else f"{path[: _PATH_SHOWN - 3]}...")
