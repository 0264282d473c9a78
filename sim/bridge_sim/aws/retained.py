"""iot-data GetRetainedMessage and ListRetainedMessages, which moto lacks (HTTP 500).

The broker keeps the retained messages, whoever published them (a device over MQTT, or
Publish over HTTPS with `retain=true`), so each call asks it: a short-lived MQTT 5 client
on the trusted listener subscribes to the topic (or `#`, which matches no `$aws/...` topic,
where AWS allows no retained messages), collects what arrives with the retain flag, and
knows it has everything when the SUBACK of a second, private subscription arrives (the
broker sends a subscription's retained messages before answering the next SUBSCRIBE).

`lastModifiedTime` is exact for messages retained through the HTTPS API; for a device's,
the broker does not say, so it is when the stand-in first saw that payload on the topic.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import paho.mqtt.client as paho
from moto.core.exceptions import JsonRESTError
from moto.iotdata.responses import IoTDataPlaneResponse

__all__ = ["RetainedMessages"]

_TIMEOUT_S = 5.0
_INFLIGHT = 100  # the broker's max_inflight_messages: more QoS 1 messages may trail the SUBACK
_DRAIN_IDLE_S = 0.2
_MAX_RESULTS = 200  # ListRetainedMessages' maxResults range is 1-200


@dataclass(frozen=True)
class Retained:
    topic: str
    payload: bytes
    qos: int
    user_properties: list[tuple[str, str]]


def _error(kind: str, message: str, status: int) -> JsonRESTError:
    exc = JsonRESTError(kind, message)
    exc.code = status
    return exc


class RetainedMessages:
    """Answers the two calls from the broker's retained messages."""

    def __init__(self, *, host: str, port: int) -> None:
        self._host = host
        self._port = port
        self._lock = threading.Lock()
        self._modified: dict[str, tuple[str, int]] = {}  # topic -> (payload digest, ms)
        self._patched: dict[str, Any] = {}

    def published(self, topic: str, payload: bytes) -> None:
        """A retained publish the stand-in made itself (HTTPS Publish): note its time."""
        with self._lock:
            if payload:
                self._modified[topic] = (_digest(payload), int(time.time() * 1000))
            else:
                self._modified.pop(topic, None)  # an empty retained message clears it

    def _last_modified(self, message: Retained) -> int:
        digest = _digest(message.payload)
        with self._lock:
            known = self._modified.get(message.topic)
            if known is None or known[0] != digest:
                known = (digest, int(time.time() * 1000))
                self._modified[message.topic] = known
            return known[1]

    def fetch(self, topic_filter: str) -> list[Retained]:
        """The broker's retained messages matching `topic_filter`, by topic."""
        found: dict[str, Retained] = {}
        done = threading.Event()
        sentinel = f"aws-standin/retained/{uuid.uuid4().hex}"
        marker: dict[str, int] = {}
        last_message = [time.monotonic()]
        client = paho.Client(
            client_id=f"aws-standin-retained-{uuid.uuid4().hex[:12]}", protocol=paho.MQTTv5
        )

        def on_connect(c: paho.Client, _u: Any, _f: Any, _rc: Any, _p: Any = None) -> None:
            c.subscribe(topic_filter, qos=1)
            marker["mid"] = c.subscribe(sentinel, qos=0)[1]

        def on_subscribe(_c: paho.Client, _u: Any, mid: int, _rc: Any, _p: Any = None) -> None:
            if mid == marker.get("mid"):
                done.set()

        def on_message(_c: paho.Client, _u: Any, message: paho.MQTTMessage) -> None:
            if not message.retain:
                return
            properties = getattr(message, "properties", None)
            user = list(getattr(properties, "UserProperty", None) or [])
            found[message.topic] = Retained(message.topic, message.payload, message.qos, user)
            last_message[0] = time.monotonic()

        client.on_connect = on_connect
        client.on_subscribe = on_subscribe
        client.on_message = on_message
        client.connect(self._host, self._port)
        client.loop_start()
        try:
            if not done.wait(_TIMEOUT_S):
                raise _error("ServiceUnavailableException", "The broker did not answer", 503)
            # QoS 1 messages beyond the in-flight window follow the SUBACK: wait until quiet.
            while len(found) >= _INFLIGHT and time.monotonic() - last_message[0] < _DRAIN_IDLE_S:
                time.sleep(_DRAIN_IDLE_S / 4)
        finally:
            client.disconnect()
            client.loop_stop()
        return [found[topic] for topic in sorted(found)]

    def install(self) -> None:
        """Answer both calls on moto's iot-data endpoint (class attributes: one stand-in a
        process)."""
        store = self

        def get_retained_message(response: Any) -> str:
            topic = response.path.split("/retainedMessage/", 1)[-1]
            topic = _unquote(topic)
            if not topic or "+" in topic or "#" in topic:
                raise _error("InvalidRequestException", "Invalid topic", 400)
            matches = [m for m in store.fetch(topic) if m.topic == topic]
            if not matches:
                raise _error(
                    "ResourceNotFoundException", "The specified resource does not exist", 404
                )
            message = matches[0]
            body: dict[str, Any] = {
                "topic": message.topic,
                "payload": base64.b64encode(message.payload).decode(),
                "qos": message.qos,
                "lastModifiedTime": store._last_modified(message),
            }
            if message.user_properties:
                pairs = [{key: value} for key, value in message.user_properties]
                body["userProperties"] = base64.b64encode(json.dumps(pairs).encode()).decode()
            return json.dumps(body)

        def list_retained_messages(response: Any) -> str:
            text = response.querystring.get("maxResults", [str(_MAX_RESULTS)])[0]
            size = int(text) if text.isdigit() else 0
            if not 1 <= size <= _MAX_RESULTS:
                raise _error(
                    "InvalidRequestException", f"maxResults must be 1 to {_MAX_RESULTS}", 400
                )
            messages = store.fetch("#")
            token = response.querystring.get("nextToken", [None])[0]
            if token:
                after = _untoken(token)
                messages = [m for m in messages if m.topic > after]
            page = messages[:size]
            body: dict[str, Any] = {
                "retainedTopics": [
                    {
                        "topic": m.topic,
                        "payloadSize": len(m.payload),
                        "qos": m.qos,
                        "lastModifiedTime": store._last_modified(m),
                    }
                    for m in page
                ]
            }
            if len(messages) > size:
                body["nextToken"] = base64.urlsafe_b64encode(page[-1].topic.encode()).decode()
            return json.dumps(body)

        for name, handler in (
            ("get_retained_message", get_retained_message),
            ("list_retained_messages", list_retained_messages),
        ):
            self._patched[name] = getattr(IoTDataPlaneResponse, name, None)
            setattr(IoTDataPlaneResponse, name, handler)

    def uninstall(self) -> None:
        """Give moto its own (missing) handlers back."""
        for name, original in self._patched.items():
            if original is None:
                delattr(IoTDataPlaneResponse, name)
            else:
                setattr(IoTDataPlaneResponse, name, original)
        self._patched.clear()


def _digest(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


def _unquote(text: str) -> str:
    return unquote(text) if "%" in text else text


def _untoken(token: str) -> str:
    try:
        return base64.urlsafe_b64decode(token.encode()).decode()
    except (ValueError, UnicodeDecodeError) as exc:
        raise _error("InvalidRequestException", "Invalid nextToken", 400) from exc
