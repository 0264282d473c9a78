"""The blob container import jobs read from, and the SAS URI IoT Hub is given for it."""

from __future__ import annotations

import contextlib
import datetime as dt

from azure.core.exceptions import ResourceExistsError
from azure.storage.blob import ContainerSasPermissions, generate_container_sas
from azure.storage.blob.aio import BlobServiceClient

from bridge.errors import ConfigError

__all__ = ["ImportContainer"]

_SAS_LIFETIME = dt.timedelta(hours=4)


def _fields(connection_string: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for part in connection_string.split(";"):
        key, sep, value = part.partition("=")
        if sep:
            fields[key.strip()] = value.strip()
    return fields


class ImportContainer:
    """A container the bridge writes `devices.txt` to; IoT Hub reads it with a short SAS."""

    def __init__(self, connection_string: str, name: str = "iot-bridge-import") -> None:
        fields = _fields(connection_string)
        missing = [key for key in ("AccountName", "AccountKey") if key not in fields]
        if missing:
            msg = f"AZURE_STORAGE_CONNECTION_STRING lacks {', '.join(missing)}"
            raise ConfigError(msg)
        self._connection_string = connection_string
        self._account = fields["AccountName"]
        self._key = fields["AccountKey"]
        self.name = name
        self._endpoint = fields.get("BlobEndpoint") or (
            f"{fields.get('DefaultEndpointsProtocol', 'https')}://{self._account}.blob."
            f"{fields.get('EndpointSuffix', 'core.windows.net')}"
        )

    async def sas_uri(self) -> str:
        """Create the container if needed; a SAS URI valid for a few hours."""
        async with BlobServiceClient.from_connection_string(self._connection_string) as service:
            container = service.get_container_client(self.name)
            if not await container.exists():
                with contextlib.suppress(ResourceExistsError):  # another replica was first
                    await container.create_container()
        token = generate_container_sas(
            self._account,
            self.name,
            account_key=self._key,
            permission=ContainerSasPermissions(read=True, write=True, delete=True, list=True),
            expiry=dt.datetime.now(dt.UTC) + _SAS_LIFETIME,
        )
        return f"{self._endpoint.rstrip('/')}/{self.name}?{token}"
