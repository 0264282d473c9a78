"""Twin calls of `IotHubService`: reads spend the twin-read throttle, writes the twin-update one.

The service API writes tags and desired properties only; reported properties belong to the
device (or module) connection.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bridge.azure.identities import segment
from bridge.azure.models import Twin
from bridge.azure.quotas import Operation

if TYPE_CHECKING:
    from collections.abc import Mapping

    from bridge.azure.transport import HubTransport

__all__ = ["TwinCalls"]


def _twin_path(device_id: str, module_id: str | None) -> str:
    path = f"/twins/{segment(device_id)}"
    return path if module_id is None else f"{path}/modules/{segment(module_id)}"


class TwinCalls:
    """Read, replace and patch device and module twins."""

    _transport: HubTransport

    async def get_twin(self, device_id: str, *, module_id: str | None = None) -> Twin:
        """The device's twin, or its module's with `module_id`."""
        response = await self._transport.call(
            "GET", _twin_path(device_id, module_id), Operation.TWIN_READ, device_id=device_id
        )
        return Twin.from_json(response.body)

    async def replace_twin(
        self,
        device_id: str,
        tags: Mapping[str, Any],
        desired: Mapping[str, Any],
        *,
        etag: str | None = None,
        module_id: str | None = None,
    ) -> Twin:
        """Replace tags and desired properties whole: keys not given are removed.

        With `etag`, only while the twin is at that etag (else PreconditionFailed). The twin
        returned carries the new etag, version and desired `$version`.
        """
        body = {"tags": dict(tags), "properties": {"desired": dict(desired)}}
        return await self._write("PUT", device_id, module_id, body, etag)

    async def update_twin(
        self,
        device_id: str,
        *,
        tags: Mapping[str, Any] | None = None,
        desired: Mapping[str, Any] | None = None,
        etag: str | None = None,
        module_id: str | None = None,
    ) -> Twin:
        """Merge-patch tags and/or desired properties; a None value deletes its key."""
        body: dict[str, Any] = {}
        if tags is not None:
            body["tags"] = dict(tags)
        if desired is not None:
            body["properties"] = {"desired": dict(desired)}
        return await self._write("PATCH", device_id, module_id, body, etag)

    async def _write(
        self,
        method: str,
        device_id: str,
        module_id: str | None,
        body: dict[str, Any],
        etag: str | None,
    ) -> Twin:
        response = await self._transport.call(
            method,
            _twin_path(device_id, module_id),
            Operation.TWIN_UPDATE,
            body=body,
            # `*` when no etag is given, as azure-iot-hub sends it.
            if_match=etag or "*",
            device_id=device_id,
        )
        return Twin.from_json(response.body)
