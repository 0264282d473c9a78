"""Mirrors AWS `reported` state into the relay module twin's reported properties.

The service API cannot write reported properties; only the identity that owns a twin
can. The bridge owns the relay module (`aws-bridge`), so it connects as that module with
Microsoft's azure-iot-device client and patches the module twin's reported section.
The device's own twin keeps its reported section for the device after cutover.

Connections are kept in a small LRU pool: a module connection costs a TLS handshake and
a twin subscription, and a device that reports once tends to report again soon. The
module's SAS key is read from the registry when a connection opens and lives only in
that connection (never logged, never stored).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from azure.iot.device.aio import IoTHubModuleClient

from bridge.azure.hub import IotHubService
from bridge.azure.models import SasAuth
from bridge.azure.module_client import close_module_client, guard_socket_pair

__all__ = ["ReportedWriter", "reported_patch"]

_TIMEOUT = 30.0


def reported_patch(current: Mapping[str, Any], wanted: Mapping[str, Any]) -> dict[str, Any]:
    """The merge patch turning `current` into `wanted` (None removes a key)."""
    patch: dict[str, Any] = {}
    for key in current:
        if key.startswith("$"):
            continue
        if key not in wanted:
            patch[key] = None
    for key, value in wanted.items():
        old = current.get(key)
        if isinstance(value, Mapping) and isinstance(old, Mapping):
            nested = reported_patch(old, value)
            if nested:
                patch[key] = nested
        elif old != value or key not in current:
            patch[key] = value
    return patch


class ReportedWriter:
    """Writes each device's mirrored reported state through its relay module's connection."""

    def __init__(
        self,
        hub: IotHubService,
        module_id: str,
        *,
        host_name: str | None = None,
        gateway_host: str | None = None,
        ca_pem: str | None = None,
        pool_size: int = 32,
    ) -> None:
        self._hub = hub
        self._module_id = module_id
        self._host_name = host_name or hub.host_name  # what device SAS tokens are for
        self._gateway_host = gateway_host
        self._ca_pem = ca_pem
        self._pool_size = pool_size
        self._clients: OrderedDict[str, Any] = OrderedDict()
        self._slots = asyncio.Semaphore(max(1, pool_size // 4))

    async def write(self, device_id: str, reported: Mapping[str, Any]) -> None:
        """Make the module twin's reported section equal `reported`.

        At most `pool_size` writes run at once, so slow module connections cannot take
        every worker of the mirror: tags and desired of other devices keep flowing.
        """
        async with self._slots:
            await self._write(device_id, reported)

    async def _write(self, device_id: str, reported: Mapping[str, Any]) -> None:
        client = await self._client(device_id)
        try:
            async with asyncio.timeout(_TIMEOUT):
                twin = await client.get_twin()
                patch = reported_patch(twin.get("reported") or {}, reported)
                if patch:
                    await client.patch_twin_reported_properties(patch)
        except BaseException:
            await self._drop(device_id)  # a broken connection is not reused
            raise

    async def close(self) -> None:
        """Disconnect every pooled connection."""
        for device_id in list(self._clients):
            await self._drop(device_id)

    async def _client(self, device_id: str) -> Any:
        pooled = self._clients.get(device_id)
        if pooled is not None:
            self._clients.move_to_end(device_id)
            return pooled
        module = await self._hub.get_module(device_id, self._module_id)
        if not isinstance(module.auth, SasAuth) or not module.auth.primary_key:
            msg = f"relay module {self._module_id} of {device_id} has no SAS key"
            raise RuntimeError(msg)
        parts = [
            f"HostName={self._host_name}",
            f"DeviceId={device_id}",
            f"ModuleId={self._module_id}",
            f"SharedAccessKey={module.auth.primary_key}",
        ]
        if self._gateway_host:
            parts.append(f"GatewayHostName={self._gateway_host}")
        # Creating a client waits on azure-iot-device's one shared pipeline thread, which
        # may be busy in another client's blocking TLS handshake: never on the event loop.
        async with asyncio.timeout(_TIMEOUT):  # that thread can hang in a handshake
            client: Any = await asyncio.to_thread(
                IoTHubModuleClient.create_from_connection_string,
                ";".join(parts),
                server_verification_cert=self._ca_pem,
                connection_retry=False,
            )
        guard_socket_pair(client)
        async with asyncio.timeout(_TIMEOUT):
            await client.connect()
        self._clients[device_id] = client
        while len(self._clients) > self._pool_size:
            await self._drop(next(iter(self._clients)))
        return client

    async def _drop(self, device_id: str) -> None:
        client = self._clients.pop(device_id, None)
        if client is None:
            return
        await close_module_client(device_id, client, timeout=_TIMEOUT)
