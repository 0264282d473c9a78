"""The message a route condition sees, and the `undefined` value of the query language."""

from __future__ import annotations

import datetime as dt
import enum
import functools
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

__all__ = ["UNDEFINED", "RoutedMessage", "iso_time", "lookup"]


class _Undefined(enum.Enum):
    UNDEFINED = enum.auto()

    def __repr__(self) -> str:
        return "undefined"


UNDEFINED: Final = _Undefined.UNDEFINED

# IoT Hub reads a body only with this content type and one of these encodings.
_JSON_TYPE = "application/json"
_ENCODINGS = {"utf-8": "utf-8", "utf-16": "utf-16", "utf-32": "utf-32"}


@dataclass
class RoutedMessage:
    """One device-to-cloud message as routing sees it; `twin` is read only when asked for."""

    body: bytes
    device_id: str
    module_id: str | None = None
    properties: Mapping[str, str] = field(default_factory=dict)
    content_type: str | None = None
    content_encoding: str | None = None
    message_id: str | None = None
    correlation_id: str | None = None
    user_id: str | None = None
    enqueued_time_ms: int = 0
    twin: Callable[[], Mapping[str, Any] | None] = lambda: None

    @functools.cached_property
    def json_body(self) -> Any:
        """The parsed body, or UNDEFINED unless it is JSON in a UTF encoding IoT Hub reads."""
        content_type = (self.content_type or "").split(";")[0].strip().lower()
        encoding = _ENCODINGS.get((self.content_encoding or "").strip().lower())
        if content_type != _JSON_TYPE or encoding is None:
            return UNDEFINED
        try:
            return json.loads(self.body.decode(encoding))
        except (UnicodeDecodeError, ValueError):
            # IoT Hub logs a routing error and treats the condition as undefined.
            return UNDEFINED

    @functools.cached_property
    def twin_document(self) -> Any:
        """The sender's twin (a module's own twin when a module sent it), or UNDEFINED."""
        twin = self.twin()
        return UNDEFINED if twin is None else twin

    def system_property(self, name: str) -> Any:
        """`$name` as IoT Hub resolves it: system properties first, then application ones."""
        key = name.lower()
        value: Any = {
            "$contenttype": self.content_type,
            "$contentencoding": self.content_encoding,
            "$connectiondeviceid": self.device_id,
            "$connectionmoduleid": self.module_id,
            "$messageid": self.message_id,
            "$correlationid": self.correlation_id,
            "$userid": self.user_id,
        }.get(key)
        if key in {"$enqueuedtime", "$iothub-enqueuedtime"}:
            value = iso_time(self.enqueued_time_ms)
        return value if value is not None else self.app_property(name)

    def app_property(self, name: str) -> Any:
        """An application property; names compare without case, as IoT Hub's do."""
        if name in self.properties:
            return self.properties[name]
        lowered = name.lower()
        return next(
            (value for key, value in self.properties.items() if key.lower() == lowered),
            UNDEFINED,
        )


def iso_time(time_ms: int) -> str:
    """A time as IoT Hub writes `iothub-enqueuedtime`."""
    stamp = dt.datetime.fromtimestamp(time_ms / 1000, dt.UTC)
    # IoT Hub writes seven fractional digits: 2017-05-08T18:55:31.8514657Z.
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


def lookup(document: Any, path: tuple[str | int, ...], *, ignore_case: bool = False) -> Any:
    """Follow object keys and array indexes; UNDEFINED where the path leaves the document."""
    value = document
    for step in path:
        if isinstance(step, int):
            if not isinstance(value, list) or step >= len(value):
                return UNDEFINED
            value = value[step]
        elif isinstance(value, dict):
            if step in value:
                value = value[step]
            elif ignore_case:
                lowered = step.lower()
                keys = [key for key in value if isinstance(key, str) and key.lower() == lowered]
                if not keys:
                    return UNDEFINED
                value = value[keys[0]]
            else:
                return UNDEFINED
        else:
            return UNDEFINED
    return value
