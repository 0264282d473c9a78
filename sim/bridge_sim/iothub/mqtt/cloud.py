"""Operations the cloud starts: direct-method calls and cloud-to-device messages.

IoT Hub's service side sends C2D messages over AMQP (`send_c2d_message`), which the
emulator does not serve; `DeviceEndpoint.send_c2d` delivers one straight to a connected,
subscribed device instead, with no queue, expiry or feedback.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import TYPE_CHECKING, Any

from bridge_sim.iothub.errors import IoTHubError
from bridge_sim.iothub.mqtt.topics import (
    METHODS_FILTER,
    c2d_filter,
    c2d_topic,
    method_request_topic,
)

if TYPE_CHECKING:
    from bridge_sim.iothub.mqtt.connection import DeviceConnection
    from bridge_sim.iothub.mqtt.state import HubState

__all__ = ["DEFAULT_METHOD_TIMEOUT", "invoke_method", "send_c2d"]

DEFAULT_METHOD_TIMEOUT = 30


def _not_online(device_id: str) -> IoTHubError:
    return IoTHubError(
        404, "DeviceNotOnline", f"Timed out waiting for device {device_id} to connect"
    )


async def invoke_method(
    hub: HubState,
    connection: DeviceConnection | None,
    device_id: str,
    request: dict[str, Any],
) -> tuple[int, Any]:
    """Publish the call, wait for the reply; 404 DeviceNotOnline, 504 on timeout."""
    if connection is None or connection.closed or not connection.subscribed(METHODS_FILTER):
        # IoT Hub treats a device that never subscribed to methods as offline for them.
        raise _not_online(device_id)
    name = request.get("methodName")
    if not isinstance(name, str) or not name:
        raise IoTHubError.argument_invalid("methodName is required")
    timeout = request.get("responseTimeoutInSeconds") or DEFAULT_METHOD_TIMEOUT
    request_id = hub.new_request_id()
    future: asyncio.Future[tuple[int, Any]] = asyncio.get_running_loop().create_future()
    hub.pending_methods[request_id] = future
    try:
        connection.publish(
            method_request_topic(name, request_id), json.dumps(request.get("payload")).encode()
        )
        await connection.stream.drain()
        async with asyncio.timeout(float(timeout)):
            return await future
    except TimeoutError as error:
        raise IoTHubError(
            504, "GatewayTimeoutException", f"Timed out waiting for the response from {device_id}"
        ) from error
    finally:
        hub.pending_methods.pop(request_id, None)


async def send_c2d(
    connection: DeviceConnection | None,
    device_id: str,
    body: bytes | str,
    properties: dict[str, str] | None = None,
) -> str:
    """Publish a C2D message to a subscribed device; 404 DeviceNotOnline otherwise."""
    if connection is None or connection.closed or not connection.subscribed(c2d_filter(device_id)):
        raise _not_online(device_id)
    bag = dict(properties or {})
    message_id = bag.setdefault("$.mid", str(uuid.uuid4()))
    bag.setdefault("$.to", f"/devices/{device_id}/messages/devicebound")
    payload = body.encode() if isinstance(body, str) else body
    connection.publish(c2d_topic(device_id, bag), payload)
    await connection.stream.drain()
    return message_id
