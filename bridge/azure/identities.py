"""Device and module identity calls of `IotHubService` (identity registry throttle)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from bridge.azure.models import Device, DeviceIdentity, Module, SasAuth
from bridge.azure.quotas import Operation

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from bridge.azure.models import Auth
    from bridge.azure.transport import HubResponse, HubTransport

__all__ = ["IdentityCalls", "segment"]


def segment(value: str) -> str:
    """A path segment: device ids may hold `%`, `#`, `?`, `$`, `'` and more."""
    return quote(value, safe="")


def _identity_path(device_id: str, module_id: str | None = None) -> str:
    path = f"/devices/{segment(device_id)}"
    return path if module_id is None else f"{path}/modules/{segment(module_id)}"


class IdentityCalls:
    """Create, read, update and delete device and module identities."""

    _transport: HubTransport

    async def get_device(self, device_id: str) -> Device:
        """The device's identity; NotFound when it is not registered."""
        response = await self._transport.call(
            "GET", _identity_path(device_id), Operation.IDENTITY_REGISTRY, device_id=device_id
        )
        return Device.from_json(response.body)

    async def create_or_update_device(
        self, device: DeviceIdentity, *, etag: str | None = None
    ) -> Device:
        """Register `device`, or update it if it exists (only while at `etag`, when given).

        Updating a SAS device without both keys keeps its current keys (one more read).
        """
        path, device_id = _identity_path(device.device_id), device.device_id
        if etag is not None:
            return Device.from_json((await self._put(path, device.to_json(), etag, device_id)).body)
        body = await self._create_or_update(
            path, device.to_json(), device.auth, device_id, lambda: self.get_device(device_id)
        )
        return Device.from_json(body)

    async def delete_device(self, device_id: str, etag: str = "*") -> bool:
        """Delete the device with its modules and twin; False when it was already gone."""
        return await self._delete(_identity_path(device_id), etag, device_id)

    async def get_module(self, device_id: str, module_id: str) -> Module:
        """The module's identity; NotFound when it or its device is not registered."""
        response = await self._transport.call(
            "GET",
            _identity_path(device_id, module_id),
            Operation.IDENTITY_REGISTRY,
            device_id=device_id,
        )
        return Module.from_json(response.body)

    async def create_or_update_module(
        self,
        device_id: str,
        module_id: str,
        auth: SasAuth | None = None,
        *,
        managed_by: str | None = None,
    ) -> Module:
        """Register a SAS module on the device, or update it (keeping its keys if none given)."""
        auth = auth or SasAuth()
        body: dict[str, Any] = {"deviceId": device_id, "moduleId": module_id}
        if managed_by is not None:
            body["managedBy"] = managed_by
        body = await self._create_or_update(
            _identity_path(device_id, module_id),
            body | {"authentication": auth.to_json()},
            auth,
            device_id,
            lambda: self.get_module(device_id, module_id),
        )
        return Module.from_json(body)

    async def delete_module(self, device_id: str, module_id: str, etag: str = "*") -> bool:
        """Delete the module and its twin; False when it was already gone."""
        return await self._delete(_identity_path(device_id, module_id), etag, device_id)

    async def _put(
        self, path: str, body: dict[str, Any], if_match: str | None, device_id: str
    ) -> HubResponse:
        # Without If-Match IoT Hub creates, and answers 409 when the identity exists.
        return await self._transport.call(
            "PUT",
            path,
            Operation.IDENTITY_REGISTRY,
            body=body,
            if_match=if_match,
            accept=(409,) if if_match is None else (),
            device_id=device_id,
        )

    async def _create_or_update(
        self,
        path: str,
        body: dict[str, Any],
        auth: Auth,
        device_id: str,
        read_current: Callable[[], Awaitable[Device | Module]],
    ) -> Any:
        response = await self._put(path, body, None, device_id)
        if response.status != 409:
            return response.body
        if_match = "*"
        if isinstance(auth, SasAuth) and not (auth.primary_key and auth.secondary_key):
            # IoT Hub would generate new keys for those left out and lock the device out.
            current = await read_current()
            if isinstance(current.auth, SasAuth):
                auth = SasAuth(
                    auth.primary_key or current.auth.primary_key,
                    auth.secondary_key or current.auth.secondary_key,
                )
            if_match = current.etag
        body = body | {"authentication": auth.to_json()}
        return (await self._put(path, body, if_match, device_id)).body

    async def _delete(self, path: str, etag: str, device_id: str) -> bool:
        response = await self._transport.call(
            "DELETE",
            path,
            Operation.IDENTITY_REGISTRY,
            if_match=etag,
            accept=(404,),
            device_id=device_id,
        )
        return response.status != 404
