"""Blob storage for import/export jobs: container SAS URIs, line files in and out.

A job gets container URIs with a SAS token from its caller, as IoT Hub does, e.g.
`http://127.0.0.1:10000/devstoreaccount1/import?sv=...&sig=...` for Azurite. Every storage
failure becomes a `JobFailedError` whose text is the job's `failureReason`.
"""

from __future__ import annotations

import contextlib
import ipaddress
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, unquote, urlsplit

from azure.core.exceptions import AzureError, HttpResponseError
from azure.storage.blob import BlobBlock
from azure.storage.blob.aio import ContainerClient

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

__all__ = ["BlockWriter", "ContainerLocation", "JobFailedError", "read_lines", "storage_errors"]

# Staged blocks keep an export's memory flat however large the registry is.
_BLOCK_SIZE = 4 * 1024 * 1024
# A job must fail in seconds, not minutes, when storage is unreachable or refuses it.
_CLIENT_OPTIONS = {"retry_total": 1, "connection_timeout": 5, "read_timeout": 30}
# Download in blocks of this size too, so an import reports progress as it reads.
_CHUNK_OPTIONS = {"max_single_get_size": _BLOCK_SIZE, "max_chunk_get_size": _BLOCK_SIZE}


class JobFailedError(Exception):
    """Ends a job as `failed`; the message is the job's `failureReason`."""


@dataclass(frozen=True)
class ContainerLocation:
    """A blob container SAS URI split into account URL, container name and SAS token."""

    account_url: str
    container: str
    sas_token: str

    @classmethod
    def parse(cls, uri: str | None, what: str) -> ContainerLocation:
        """Split `uri` (the job's `what` container); `JobFailedError` when it cannot be used."""
        if not uri:
            raise JobFailedError(f"The {what} blob container URI is missing")
        parts = urlsplit(uri)
        segments = [segment for segment in parts.path.split("/") if segment]
        if parts.scheme not in {"http", "https"} or not parts.netloc or not segments:
            raise JobFailedError(f"The {what} blob container URI is not a container URL")
        if "sig" not in parse_qs(parts.query):
            raise JobFailedError(f"The {what} blob container URI carries no SAS signature")
        # Azurite and other path-style endpoints put the account name before the container.
        account_path = "/".join(segments[:-1])
        account_url = f"{parts.scheme}://{parts.netloc}/{account_path}".rstrip("/")
        return cls(account_url, unquote(segments[-1]), parts.query)

    @property
    def on_loopback(self) -> bool:
        host = urlsplit(self.account_url).hostname or ""
        try:
            return host == "localhost" or ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False

    def client(self) -> ContainerClient:
        # A proxy from the environment cannot reach this machine's loopback (Azurite).
        return ContainerClient(
            self.account_url,
            self.container,
            credential=self.sas_token,
            use_env_settings=not self.on_loopback,
            **_CLIENT_OPTIONS,
            **_CHUNK_OPTIONS,
        )


@contextlib.asynccontextmanager
async def storage_errors(action: str) -> AsyncIterator[None]:
    """Turn storage errors raised while doing `action` into a `JobFailedError`."""
    try:
        yield
    except HttpResponseError as error:
        code = error.error_code or getattr(error, "reason", None) or "error"
        raise JobFailedError(
            f"Blob storage refused {action}: {error.status_code} {code}"
        ) from error
    except AzureError as error:
        raise JobFailedError(f"Blob storage unreachable while {action}: {error}") from error


async def read_lines(
    container: ContainerClient, blob_name: str
) -> AsyncIterator[tuple[bytes, float]]:
    """Each line of a blob with the fraction of the blob read so far, streamed in chunks."""
    downloader = await container.get_blob_client(blob_name).download_blob()
    total = max(1, downloader.size)
    read = 0
    pending = b""
    async for chunk in downloader.chunks():
        read += len(chunk)
        *lines, pending = (pending + chunk).split(b"\n")
        for line in lines:
            yield line, read / total
    if pending:
        yield pending, 1.0


class BlockWriter:
    """Writes a blob line by line, committing staged blocks at `close()`."""

    def __init__(self, container: ContainerClient, blob_name: str) -> None:
        self._blob = container.get_blob_client(blob_name)
        self._buffer = bytearray()
        self._blocks: list[BlobBlock] = []

    async def write(self, line: str) -> None:
        self._buffer += line.encode() + b"\n"
        if len(self._buffer) >= _BLOCK_SIZE:
            await self._stage()

    async def _stage(self) -> None:
        block_id = f"{len(self._blocks):08d}"
        await self._blob.stage_block(block_id, bytes(self._buffer))
        self._blocks.append(BlobBlock(block_id))
        self._buffer.clear()

    async def close(self) -> None:
        """Write the blob; an empty one when nothing was written."""
        if not self._blocks:
            await self._blob.upload_blob(bytes(self._buffer), overwrite=True)
            return
        if self._buffer:
            await self._stage()
        await self._blob.commit_block_list(self._blocks)
