"""The small typed boundary around awscrt's MQTT 5 client (awscrt ships no type stubs).

Everything that touches awscrt objects by attribute lives here, so `source.py` deals in
str, bytes and bools.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from awscrt import mqtt5
from awsiot import mqtt5_client_builder

__all__ = [
    "Callbacks",
    "ClientSpec",
    "Lifeline",
    "build_client",
    "describe_failure",
    "is_permanent",
    "publish_fields",
    "refused_filters",
    "rejoined_session",
    "subscribe_packet",
    "unsubscribe_packet",
]

# Answers that retrying with the same files and settings cannot change.
_PERMANENT_CONNACK = {"NOT_AUTHORIZED", "BAD_USERNAME_OR_PASSWORD", "CLIENT_IDENTIFIER_NOT_VALID"}
_GRANTED = {mqtt5.SubackReasonCode.GRANTED_QOS_1}


@dataclass(frozen=True)
class ClientSpec:
    """How to reach the broker and what session to ask for."""

    host: str
    port: int
    ca_file: Path
    cert_file: Path
    key_file: Path
    client_id: str
    session_expiry_s: int
    receive_maximum: int
    keep_alive_s: int
    reconnect_delay_s: tuple[float, float]


@dataclass(frozen=True)
class Callbacks:
    """What awscrt calls, on its own threads."""

    publish: Callable[[Any], None]
    connected: Callable[[Any], None]
    failed: Callable[[Any], None]
    disconnected: Callable[[Any], None]
    stopped: Callable[[Any], None]


class Lifeline:
    """Holds an awscrt MQTT 5 client until awscrt reports it stopped.

    awscrt (0.36 to 0.38 at least) segfaults when a QoS 1 PUBLISH arrives after the Python
    `Client` was freed but before its native client finished shutting down: the binding
    sets its native pointer to NULL on release and then acknowledges the message through
    it (`s_on_publish_received` in awscrt's source/mqtt5_client.c). So a client stays
    referenced here from construction until its `on_lifecycle_stopped`. A client whose stop
    is never reported stays held: a small leak, where the alternative is a crash.

    Usage: pass `lifeline.stopped` as `on_lifecycle_stopped`, then `lifeline.hold(client)`.
    """

    _held: ClassVar[set[Lifeline]] = set()
    _lock: ClassVar[threading.Lock] = threading.Lock()  # awscrt calls back on its own threads

    def __init__(self, on_stopped: Callable[[Any], None] | None = None) -> None:
        self._client: Any = None
        self._on_stopped = on_stopped

    def hold(self, client: Any) -> Any:
        """Keep `client` alive until `stopped` is called; returns it."""
        with self._lock:
            self._client = client
            self._held.add(self)
        return client

    def stopped(self, data: Any) -> None:
        """awscrt's `on_lifecycle_stopped`: let the client go, then pass the event on."""
        with self._lock:
            self._held.discard(self)
            self._client = None  # also breaks the cycle client -> core -> this callback
        if self._on_stopped is not None:
            self._on_stopped(data)

    @classmethod
    def held(cls) -> int:
        """Clients built and not yet reported stopped."""
        with cls._lock:
            return len(cls._held)


def build_client(spec: ClientSpec, callbacks: Callbacks) -> Any:
    """An awscrt MQTT 5 client over mutual TLS that always rejoins its session.

    REJOIN_ALWAYS sends Clean Start 0 on every CONNECT, the first one of a process included,
    so a restarted bridge picks up what the broker queued while it was down.
    REJOIN_POST_SUCCESS would ask for a clean session on each process's first CONNECT and
    lose exactly those messages. awscrt's caveat about REJOIN_ALWAYS (it keeps no durable
    copy of its own unacknowledged outgoing publishes) does not apply: the source publishes
    nothing.

    The client is held by a `Lifeline` until it is reported stopped.
    """
    lifeline = Lifeline(callbacks.stopped)
    client = mqtt5_client_builder.mtls_from_path(
        cert_filepath=str(spec.cert_file),
        pri_key_filepath=str(spec.key_file),
        # Replaces the system trust store; peer verification stays on.
        ca_filepath=str(spec.ca_file),
        endpoint=spec.host,
        port=spec.port,
        client_id=spec.client_id,
        session_behavior=mqtt5.ClientSessionBehaviorType.REJOIN_ALWAYS,
        session_expiry_interval_sec=spec.session_expiry_s,
        receive_maximum=spec.receive_maximum,
        keep_alive_interval_sec=spec.keep_alive_s,
        min_reconnect_delay_ms=int(spec.reconnect_delay_s[0] * 1000),
        max_reconnect_delay_ms=int(spec.reconnect_delay_s[1] * 1000),
        retry_jitter_mode=mqtt5.ExponentialBackoffJitterMode.FULL,
        # The AWS IoT Core defaults pace what the client sends, for the per-connection
        # publish quota; the source publishes nothing, and the pacing only delayed its
        # PUBACKs (measured at 2000 msg/s: p50 6 ms instead of 0.2 ms, and 3 s for the
        # UNSUBACK that ends a flush).
        extended_validation_and_flow_control_options=(
            mqtt5.ExtendedValidationAndFlowControlOptions.NONE
        ),
        on_publish_received=callbacks.publish,
        on_lifecycle_connection_success=callbacks.connected,
        on_lifecycle_connection_failure=callbacks.failed,
        on_lifecycle_disconnection=callbacks.disconnected,
        on_lifecycle_stopped=lifeline.stopped,
    )
    return lifeline.hold(client)


def subscribe_packet(filters: Sequence[str]) -> Any:
    """One SUBSCRIBE at QoS 1; retained messages only for subscriptions the session lacked."""
    return mqtt5.SubscribePacket(
        subscriptions=[
            mqtt5.Subscription(
                topic_filter=topic_filter,
                qos=mqtt5.QoS.AT_LEAST_ONCE,
                retain_handling_type=mqtt5.RetainHandlingType.SEND_ON_SUBSCRIBE_IF_NEW,
            )
            for topic_filter in filters
        ]
    )


def unsubscribe_packet(filters: Sequence[str]) -> Any:
    """One UNSUBSCRIBE."""
    return mqtt5.UnsubscribePacket(topic_filters=list(filters))


def refused_filters(filters: Sequence[str], suback: Any) -> dict[str, str]:
    """Filters the SUBACK did not grant at QoS 1, with the broker's reason."""
    codes = list(suback.reason_codes or ())
    return {
        topic_filter: getattr(code, "name", str(code))
        for topic_filter, code in zip(filters, codes, strict=False)
        if code not in _GRANTED
    } | dict.fromkeys(filters[len(codes) :], "no reason code")


def describe_failure(data: Any) -> str:
    """A connection failure or loss in words: awscrt's error name and the broker's reason."""
    parts = []
    exception = getattr(data, "exception", None)
    if exception is not None:
        parts.append(str(getattr(exception, "name", None) or exception))
    packet = getattr(data, "connack_packet", None) or getattr(data, "disconnect_packet", None)
    code = getattr(packet, "reason_code", None)
    if code is not None:
        parts.append(f"reason {getattr(code, 'name', code)}")
    reason = getattr(packet, "reason_string", None)
    if reason:
        parts.append(str(reason))
    return ", ".join(parts) or "unknown"


def is_permanent(data: Any) -> bool:
    """True for failures that the same certificate, key, CA and client id will meet again."""
    name = str(getattr(getattr(data, "exception", None), "name", ""))
    code = getattr(getattr(data, "connack_packet", None), "reason_code", None)
    return name.startswith("AWS_IO_TLS") or getattr(code, "name", "") in _PERMANENT_CONNACK


def rejoined_session(data: Any) -> bool:
    """Whether the CONNACK said the broker still had the session."""
    settings = getattr(data, "negotiated_settings", None)
    return bool(getattr(settings, "rejoined_session", False))


def publish_fields(data: Any) -> tuple[str, bytes, object | None, dict[str, str]]:
    """(topic, payload, PUBACK control handle, user properties) of a received PUBLISH.

    The handle must be taken inside awscrt's callback, always for QoS 1: left alone, awscrt
    acknowledges the message when the callback returns, before the engine has stored it.
    """
    packet = data.publish_packet
    acquire = data.acquire_publish_acknowledgement_control
    handle = acquire() if acquire is not None else None
    payload = packet.payload
    if isinstance(payload, str):
        payload = payload.encode()
    properties = {p.name: p.value for p in packet.user_properties or ()}
    return str(packet.topic), bytes(payload or b""), handle, properties
