"""iot-data `Publish` over HTTPS: the message reaches MQTT subscribers, as on AWS IoT.

moto's handler only appends the message to a list (`published_payloads`); AWS IoT's
Publish API (`POST /topics/{topic}?qos=&retain=`) hands it to the message broker, so a
device subscribed to the topic receives it, and a publish on a shadow or jobs request
topic is served like a device's. The stand-in keeps moto's list and also publishes the
message through the glue client with the request's QoS and retain flag.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

from moto.core.exceptions import JsonRESTError
from moto.iotdata.responses import IoTDataPlaneResponse

__all__ = ["HttpPublish"]

Send = Callable[..., None]  # (topic, payload, *, qos, retain)
MAX_PAYLOAD_BYTES = 128 * 1024  # AWS IoT's message size limit


def _error(kind: str, message: str, status: int) -> JsonRESTError:
    exc = JsonRESTError(kind, message)
    exc.code = status
    return exc


class HttpPublish:
    """Replaces moto's iot-data `publish` handler (a class attribute: one stand-in a process)."""

    def __init__(self, send: Send, on_retained: Callable[[str, bytes], None] | None = None) -> None:
        self._send = send
        self._on_retained = on_retained
        self._original: Any = None

    def install(self) -> None:
        send, on_retained = self._send, self._on_retained

        def publish(response: Any) -> str:
            topic = response.path.split("/topics/", 1)[-1]
            topic = unquote(topic) if "%" in topic else topic
            qos_text = response.querystring.get("qos", ["0"])[0]
            if qos_text not in ("0", "1"):
                raise _error("InvalidRequestException", "qos must be 0 or 1", 400)
            retain = response.querystring.get("retain", ["false"])[0].lower() == "true"
            body = response.body if isinstance(response.body, bytes) else response.body.encode()
            if len(body) > MAX_PAYLOAD_BYTES:
                raise _error(
                    "RequestEntityTooLargeException",
                    "The payload exceeds the maximum size allowed",
                    413,
                )
            if not topic or "+" in topic or "#" in topic:
                raise _error("InvalidRequestException", "Invalid topic", 400)
            response.iotdata_backend.publish(topic=topic, payload=body)
            send(topic, body, qos=int(qos_text), retain=retain)
            if retain and on_retained is not None:
                on_retained(topic, body)
            return json.dumps({})

        self._original = IoTDataPlaneResponse.publish
        IoTDataPlaneResponse.publish = publish

    def uninstall(self) -> None:
        if self._original is not None:
            IoTDataPlaneResponse.publish = self._original
            self._original = None
