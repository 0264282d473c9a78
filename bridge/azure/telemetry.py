"""Device-to-cloud messages sent as each device's relay module (`aws-bridge`).

The bridge never holds a device's key, so it cannot send as the device; it sends as the
module identity it owns under the device, which keeps `iothub-connection-device-id` equal
to the thing name (and `iothub-connection-module-id` says `aws-bridge`).

One MQTT connection per module identity, through Microsoft's azure-iot-device, kept in an
LRU pool. That is the first version's transport and its limit: a connection costs a TLS
handshake and IoT Hub's new-connection throttle, so a fleet larger than the pool pays a
handshake per message (see `bridge.relay`); `bridge.azure.amqp_telemetry` is the default
transport, many module identities per AMQP connection. Module SAS
keys are read from the registry once per device and kept in memory only (never logged,
never stored): a registry read spends the identity-registry quota (100/min at S1).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from azure.iot.device import Message
from azure.iot.device.aio import IoTHubModuleClient
from azure.iot.device.exceptions import CredentialError

from bridge.azure.budget import RateBudget
from bridge.azure.hub import IotHubService
from bridge.azure.models import SasAuth
from bridge.azure.module_client import close_module_client, guard_socket_pair
from bridge.azure.quotas import Operation
from bridge.errors import NotFound, Rejected

__all__ = ["ModuleSender"]

_TIMEOUT = 30.0


class ModuleSender:
    """Sends telemetry as `<device>/<module_id>`, over a pool of module connections.

    Args:
        hub: The service API, to read each relay module's SAS key.
        module_id: The relay module every device has (the mirror creates it).
        budget: Paces new connections (IoT Hub throttles them per unit).
        host_name: The hub's device-facing host name; default: the service's.
        gateway_host: A gateway (or emulator) to connect to instead.
        ca_pem: Trust this CA (emulators) instead of the system store.
        pool_size: Idle connections kept; busy ones are never closed to make room.
    """

    def __init__(
        self,
        hub: IotHubService,
        module_id: str,
        *,
        budget: RateBudget,
        host_name: str | None = None,
        gateway_host: str | None = None,
        ca_pem: str | None = None,
        pool_size: int = 64,
    ) -> None:
        self._hub = hub
        self._module_id = module_id
        self._budget = budget
        self._host_name = host_name or hub.host_name
        self._gateway_host = gateway_host
        self._ca_pem = ca_pem
        self._pool_size = pool_size
        self._clients: OrderedDict[str, Any] = OrderedDict()
        self._busy: dict[str, int] = {}
        self._keys: dict[str, str] = {}
        self.connections_opened = 0

    @property
    def open_connections(self) -> int:
        """Module connections open now."""
        return len(self._clients)

    async def send(
        self,
        device_id: str,
        body: bytes,
        *,
        message_id: str,
        properties: Mapping[str, str],
        content_type: str | None = None,
        content_encoding: str | None = None,
    ) -> None:
        """Send one message as the device's relay module; returns once IoT Hub accepted it.

        A failure closes that connection (the next send opens a new one) and raises:
        `Rejected` when retrying cannot help as things stand (the module or its key is
        gone, IoT Hub refuses its credentials), anything else for what may pass (a dropped
        connection, a timeout, a 5xx). Callers keep one send per device at a time, which
        keeps the device's order.
        """
        message = Message(
            body,
            message_id=message_id,
            content_encoding=content_encoding,
            content_type=content_type,
        )
        message.custom_properties = dict(properties)
        self._busy[device_id] = self._busy.get(device_id, 0) + 1
        try:
            client = await self._client(device_id)
            async with asyncio.timeout(_TIMEOUT):
                await client.send_message(message)
        except (NotFound, CredentialError) as exc:
            await self._drop(device_id)
            self.forget_key(device_id)  # a regenerated key is read again next time
            raise Rejected(
                f"IoT Hub refuses relay module {self._module_id} of {device_id}: {exc}",
                device_id=device_id,
            ) from exc
        except BaseException:
            await self._drop(device_id)  # a broken connection is not reused
            raise
        finally:
            self._busy[device_id] -= 1
            if not self._busy[device_id]:
                del self._busy[device_id]
        await self._shrink()

    def forget_key(self, device_id: str) -> None:
        """Read the module's key again next time (it was regenerated or refused)."""
        self._keys.pop(device_id, None)

    async def close(self) -> None:
        """Disconnect every pooled connection."""
        for device_id in list(self._clients):
            await self._drop(device_id)

    async def _key(self, device_id: str) -> str:
        key = self._keys.get(device_id)
        if key is None:
            module = await self._hub.get_module(device_id, self._module_id)
            if not isinstance(module.auth, SasAuth) or not module.auth.primary_key:
                raise Rejected(
                    f"relay module {self._module_id} of {device_id} has no SAS key",
                    device_id=device_id,
                )
            key = self._keys[device_id] = module.auth.primary_key
        return key

    async def _client(self, device_id: str) -> Any:
        pooled = self._clients.get(device_id)
        if pooled is not None:
            self._clients.move_to_end(device_id)
            return pooled
        parts = [
            f"HostName={self._host_name}",
            f"DeviceId={device_id}",
            f"ModuleId={self._module_id}",
            f"SharedAccessKey={await self._key(device_id)}",
        ]
        if self._gateway_host:
            parts.append(f"GatewayHostName={self._gateway_host}")
        await self._budget.acquire(Operation.NEW_CONNECTION)
        # Creating a client waits on azure-iot-device's shared pipeline thread, which may
        # be in another client's blocking TLS handshake: never on the event loop.
        async with asyncio.timeout(_TIMEOUT):
            client: Any = await asyncio.to_thread(
                IoTHubModuleClient.create_from_connection_string,
                ";".join(parts),
                server_verification_cert=self._ca_pem,
                connection_retry=False,
            )
        guard_socket_pair(client)
        try:
            async with asyncio.timeout(_TIMEOUT):
                await client.connect()
        except BaseException:
            await _shutdown(device_id, client)
            raise
        self.connections_opened += 1
        self._clients[device_id] = client
        return client

    async def _shrink(self) -> None:
        """Close the least recently used idle connections beyond the pool size."""
        for device_id in list(self._clients):
            if len(self._clients) <= self._pool_size:
                return
            if device_id not in self._busy:
                await self._drop(device_id)

    async def _drop(self, device_id: str) -> None:
        client = self._clients.pop(device_id, None)
        if client is not None:
            await _shutdown(device_id, client)


async def _shutdown(device_id: str, client: Any) -> None:
    await close_module_client(device_id, client, timeout=_TIMEOUT)
