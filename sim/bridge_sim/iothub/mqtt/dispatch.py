"""What a device's PUBLISH does: telemetry into the event log, twin requests, method replies."""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING, Any

from bridge_sim.iothub.errors import IoTHubError
from bridge_sim.iothub.mqtt import codec
from bridge_sim.iothub.mqtt.codec import PacketType
from bridge_sim.iothub.mqtt.state import ENDPOINT_NAME, ProtocolViolationError
from bridge_sim.iothub.mqtt.topics import (
    TWIN_RESPONSE_FILTER,
    InboundTopic,
    TopicKind,
    classify,
    twin_response_topic,
)
from bridge_sim.iothub.quotas import Operation

if TYPE_CHECKING:
    from bridge_sim.iothub.mqtt.connection import DeviceConnection
    from bridge_sim.iothub.mqtt.state import HubState

__all__ = ["handle_publish", "telemetry_fields"]

# Property-bag keys IoT Hub turns into AMQP message properties rather than app properties.
_SYSTEM_PROPERTIES = {
    "$.mid": "message_id",
    "$.cid": "correlation_id",
    "$.uid": "user_id",
    "$.ct": "content_type",
    "$.ce": "content_encoding",
}


def telemetry_fields(bag: dict[str, str], *, retain: bool) -> dict[str, Any]:
    """EventLog.append keyword arguments for a message's property bag.

    Custom properties become application properties; `$.`-prefixed system properties map
    onto message properties, and the others (`$.exp`, `$.ifid`, `$.on`, ...) are dropped
    because the event log has no place for them. IoT Hub does not retain messages: a
    publish with RETAIN set is forwarded with the application property `mqtt-retain`.
    """
    fields: dict[str, Any] = {}
    properties: dict[str, str] = {}
    for key, value in bag.items():
        if key in _SYSTEM_PROPERTIES:
            fields[_SYSTEM_PROPERTIES[key]] = value
        elif not key.startswith("$."):
            properties[key] = value
    if retain:
        properties["mqtt-retain"] = "true"
    fields["properties"] = properties
    return fields


def _error_body(error: IoTHubError) -> bytes:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    return json.dumps(
        {"errorCode": error.code, "message": error.message, "timestampUtc": stamp}
    ).encode()


async def handle_publish(connection: DeviceConnection, publish: codec.Publish) -> None:
    """Act on one device publish; ProtocolViolationError closes the connection."""
    auth = connection.auth
    topic = classify(publish.topic, auth.device_id, auth.module_id)
    if topic is None:
        raise ProtocolViolationError(f"publish to {publish.topic!r} is not allowed")
    if topic.kind is TopicKind.METHOD_RESPONSE:
        # Replies are never faulted: a fault on the call itself is the REST API's to inject.
        _method_response(connection, publish, topic)
        return
    rule = connection.hub.faults.check(ENDPOINT_NAME, topic.kind.value)
    if topic.kind is TopicKind.TELEMETRY:
        if rule is not None:
            raise ProtocolViolationError(f"injected fault {rule.id} on telemetry")
        await _telemetry(connection, publish, topic)
    else:
        _acknowledge(connection, publish)
        request_id = topic.properties.get("$rid", "")
        if rule is not None:
            error = IoTHubError(rule.status, rule.code, f"Injected fault {rule.id}")
            _twin_reply(connection, error.status, request_id, _error_body(error))
        elif topic.kind is TopicKind.TWIN_GET:
            _twin_get(connection, request_id)
        else:
            _twin_patch(connection, request_id, publish.payload)


def _acknowledge(connection: DeviceConnection, publish: codec.Publish) -> None:
    if publish.qos == 1 and publish.packet_id is not None:
        connection.stream.write(codec.encode_packet_id_ack(PacketType.PUBACK, publish.packet_id))


async def _telemetry(
    connection: DeviceConnection, publish: codec.Publish, topic: InboundTopic
) -> None:
    hub, auth = connection.hub, connection.auth
    # IoT Hub counts the body and the properties against the 256 KB message limit.
    size = len(publish.payload) + len(publish.topic)
    if size > hub.limits.max_message_bytes:
        raise ProtocolViolationError(f"message of {size} bytes exceeds the limit")
    # Over the D2C throttle the PUBACK (and the rest of this connection) waits.
    await hub.acquire(Operation.D2C_SEND)
    hub.append_telemetry(
        body=publish.payload,
        device_id=auth.device_id,
        module_id=auth.module_id,
        extra_annotations={
            "iothub-connection-auth-method": auth.auth_method_annotation,
            "iothub-connection-auth-generation-id": auth.generation_id,
        },
        **telemetry_fields(topic.properties, retain=publish.retain),
    )
    _acknowledge(connection, publish)


def _twin_reply(
    connection: DeviceConnection,
    status: int,
    request_id: str,
    body: bytes,
    version: int | None = None,
) -> None:
    # IoT Hub answers twin requests only on the response topic the device subscribed to.
    if connection.subscribed(TWIN_RESPONSE_FILTER):
        connection.publish(twin_response_topic(status, request_id, version), body)


def _twin_get(connection: DeviceConnection, request_id: str) -> None:
    hub, auth = connection.hub, connection.auth
    if not hub.quotas.try_acquire(Operation.TWIN_READ):
        error = IoTHubError(429, "ThrottlingException", "Twin read throttled")
        _twin_reply(connection, 429, request_id, _error_body(error))
        return
    try:
        twin = hub.registry.twin_properties(auth.device_id, auth.module_id)
    except IoTHubError as error:
        _twin_reply(connection, error.status, request_id, _error_body(error))
        return
    _twin_reply(connection, 200, request_id, json.dumps(twin).encode())


def _reported_patch(hub: HubState, payload: bytes) -> Any:
    if not hub.quotas.try_acquire(Operation.TWIN_UPDATE):
        raise IoTHubError(429, "ThrottlingException", "Twin update throttled")
    try:
        return json.loads(payload)
    except ValueError as error:
        raise IoTHubError.argument_invalid("reported patch is not JSON") from error


def _twin_patch(connection: DeviceConnection, request_id: str, payload: bytes) -> None:
    hub, auth = connection.hub, connection.auth
    try:
        version = hub.registry.patch_reported(
            auth.device_id, _reported_patch(hub, payload), auth.module_id
        )
    except IoTHubError as error:
        _twin_reply(connection, error.status, request_id, _error_body(error))
        return
    _twin_reply(connection, 204, request_id, b"", version)


def _method_response(
    connection: DeviceConnection, publish: codec.Publish, topic: InboundTopic
) -> None:
    _acknowledge(connection, publish)
    try:
        payload = json.loads(publish.payload) if publish.payload else None
    except ValueError:
        # IoT Hub requires JSON; a reply that is not is passed on as text.
        payload = publish.payload.decode("utf-8", "replace")
    status = topic.status if topic.status is not None else 200
    connection.hub.resolve_method(topic.properties.get("$rid", ""), status, payload)
