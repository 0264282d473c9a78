"""Azurite (the Azure Storage emulator, from npm) as a child process, on a random port."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from pathlib import Path
from types import TracebackType
from typing import Self

from bridge.logging import get_logger
from bridge_sim.errors import SimulatorError
from bridge_sim.pdeathsig import spawn
from bridge_sim.ports import free_port

__all__ = ["ACCOUNT_KEY", "ACCOUNT_NAME", "Azurite", "find_azurite"]

log = get_logger("sim.azurite")
# Azurite's well-known development account (public, documented by Microsoft).
ACCOUNT_NAME = "devstoreaccount1"
ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
_TOOLS = Path(__file__).resolve().parents[2] / "tools" / "azurite" / "node_modules" / ".bin"


def find_azurite() -> Path:
    """The azurite-blob executable: the project's pinned copy, else one on PATH."""
    local = _TOOLS / "azurite-blob"
    if local.exists():
        return local
    found = shutil.which("azurite-blob")
    if found:
        return Path(found)
    raise SimulatorError(
        "azurite-blob not found: run `make setup` (npm ci in tools/azurite) or "
        "`npm install -g azurite`"
    )


class Azurite:
    """Blob storage on `host`, data kept under `workdir`."""

    def __init__(self, *, workdir: Path, host: str = "127.0.0.1", port: int = 0) -> None:
        self.workdir = workdir
        self.host = host
        self.port = port
        self._process: asyncio.subprocess.Process | None = None

    @property
    def blob_endpoint(self) -> str:
        return f"http://{self.host}:{self.port}/{ACCOUNT_NAME}"

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT_NAME};"
            f"AccountKey={ACCOUNT_KEY};BlobEndpoint={self.blob_endpoint};"
        )

    async def __aenter__(self) -> Self:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port(self.host)
        log_file = (self.workdir / "azurite.log").open("wb")
        # --skipApiVersionCheck: current azure-storage-blob sends an API version Azurite
        # would otherwise refuse.
        self._process = await spawn(
            find_azurite(),
            "--blobHost",
            self.host,
            "--blobPort",
            str(self.port),
            "--location",
            str(self.workdir),
            "--skipApiVersionCheck",
            "--loose",
            stdout=log_file,
            stderr=asyncio.subprocess.STDOUT,
        )
        log_file.close()
        for _ in range(200):
            if self._process.returncode is not None:
                break
            with contextlib.suppress(OSError):
                _reader, writer = await asyncio.open_connection(self.host, self.port)
                writer.close()
                await writer.wait_closed()
                log.info("sim.azurite_started", endpoint=self.blob_endpoint)
                return self
            await asyncio.sleep(0.05)
        tail = (self.workdir / "azurite.log").read_text(errors="replace")[-2000:]
        await self._stop()
        raise SimulatorError(f"Azurite did not start on {self.host}:{self.port}:\n{tail}")

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._stop()

    async def _stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.returncode is not None:
            return
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 10)
        except TimeoutError:
            process.kill()
            await process.wait()
