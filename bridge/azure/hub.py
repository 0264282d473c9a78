"""`IotHubService`: the bridge's asyncio client for IoT Hub's service REST API.

Why not Microsoft's azure-iot-hub: it is synchronous (requests + msrest), has no asyncio
API and holds a thread per call in flight, while the daemon needs hundreds of calls in
flight on one event loop, all sharing one rate budget. This client speaks the same wire
protocol as azure-iot-hub 2.7 (api-version 2021-04-12, the same paths, headers and bodies;
spec section 1) over one aiohttp session with keep-alive, and paces every call through a
`RateBudget`.

    async with IotHubService(connection_string, budget=RateBudget.for_tier("S1")) as hub:
        await hub.create_or_update_device(DeviceIdentity("thing-1", X509Thumbprints(sha256)))
        twin = await hub.replace_twin("thing-1", tags={"aws": {...}}, desired={...})
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Self

from bridge.azure.budget import RateBudget
from bridge.azure.identities import IdentityCalls
from bridge.azure.jobs import ImportJobResult, import_devices
from bridge.azure.models import (
    BulkError,
    BulkResult,
    DeviceIdentity,
    DeviceImport,
    ImportMode,
)
from bridge.azure.quotas import Operation
from bridge.azure.retry import HubStats, RetryPolicy
from bridge.azure.sas import ServiceConnectionString
from bridge.azure.transport import HubTransport, hub_error
from bridge.azure.twins import TwinCalls

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterable, Sequence
    from pathlib import Path
    from types import TracebackType

__all__ = ["MAX_BULK", "MAX_PAGE", "IotHubService"]

MAX_BULK = 100  # devices per bulk registry call (IoT Hub's limit)
MAX_PAGE = 100  # twins per query page


class IotHubService(IdentityCalls, TwinCalls):
    """The service side of one IoT hub: identities, twins, bulk calls, queries, import jobs.

    Args:
        connection_string: `HostName=...;SharedAccessKeyName=...;SharedAccessKey=...`
            (a policy with RegistryWrite and ServiceConnect, such as iothubowner).
        budget: The hub's shared rate budget; unlimited when omitted.
        retry: Attempts and backoff for 429, 5xx and connection failures.
        stats: Counters of requests, retries, throttles and failures.
        ca_bundle: A CA file to trust instead of the system's (the emulator's CA).
        timeout: Seconds one HTTP attempt may take.
        max_connections: Keep-alive connections to the hub, i.e. requests in flight at once.
    """

    def __init__(
        self,
        connection_string: str | ServiceConnectionString,
        *,
        budget: RateBudget | None = None,
        retry: RetryPolicy | None = None,
        stats: HubStats | None = None,
        ca_bundle: str | Path | None = None,
        timeout: float = 30.0,
        max_connections: int = 100,
    ) -> None:
        if isinstance(connection_string, str):
            connection_string = ServiceConnectionString.parse(connection_string)
        self.budget = budget or RateBudget.unlimited()
        self.stats = stats or HubStats()
        self._transport = HubTransport(
            connection_string,
            budget=self.budget,
            retry=retry or RetryPolicy(),
            stats=self.stats,
            ca_bundle=ca_bundle,
            timeout=timeout,
            max_connections=max_connections,
        )

    @property
    def host_name(self) -> str:
        return self._transport.connection.host_name

    async def __aenter__(self) -> Self:
        await self._transport.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._transport.__aexit__(exc_type, exc, tb)

    # -- bulk, query, import -------------------------------------------------------------

    async def bulk(
        self,
        devices: Sequence[DeviceIdentity | DeviceImport],
        mode: ImportMode = "createOrUpdate",
    ) -> BulkResult:
        """Apply `mode` to every device, 100 per call (fewer if the budget's burst is smaller).

        Each device succeeds or fails on its own; failures come back in the result. Calls go
        one after another: the identity budget, not latency, bounds a bulk load. A call
        retried after a lost answer may report DeviceAlreadyExists in `create` mode;
        `createOrUpdate` is safe to repeat.
        """
        entries = [d if isinstance(d, DeviceImport) else DeviceImport(d) for d in devices]
        burst = self.budget.burst(Operation.IDENTITY_REGISTRY)
        size = max(1, min(MAX_BULK, int(burst) if burst is not None else MAX_BULK))
        errors: list[BulkError] = []
        for start in range(0, len(entries), size):
            chunk = entries[start : start + size]
            response = await self._transport.call(
                "POST",
                "/devices",
                Operation.IDENTITY_REGISTRY,
                body=[entry.to_json(mode) for entry in chunk],
                cost=len(chunk),
                accept=(400,),
            )
            body = response.body
            if response.status == 400 and not (isinstance(body, dict) and "isSuccessful" in body):
                raise hub_error(response)
            errors.extend(BulkResult.from_json(body, len(chunk)).errors)
        return BulkResult(len(entries), tuple(errors))

    async def query(self, sql: str, *, page_size: int = MAX_PAGE) -> AsyncIterator[dict[str, Any]]:
        """Every row of an IoT Hub query (twins, or projections), page after page."""
        if not 1 <= page_size <= MAX_PAGE:
            raise ValueError(f"page_size must be 1 to {MAX_PAGE}")
        continuation: str | None = None
        while True:
            headers = {"x-ms-max-item-count": str(page_size)}
            if continuation:
                headers["x-ms-continuation"] = continuation
            response = await self._transport.call(
                "POST", "/devices/query", Operation.QUERY, body={"query": sql}, headers=headers
            )
            for row in response.body or ():
                yield row
            continuation = response.headers.get("x-ms-continuation")
            if not continuation:
                return

    async def import_devices(
        self,
        devices: Iterable[DeviceIdentity | DeviceImport],
        *,
        container_sas_uri: str,
        output_container_sas_uri: str | None = None,
        mode: ImportMode = "createOrUpdate",
        blob_name: str = "devices.txt",
        poll_interval: float = 1.0,
    ) -> ImportJobResult:
        """Import `devices` (with their twins) through a blob and an import job; see `jobs`."""
        return await import_devices(
            self._transport,
            devices,
            container_sas_uri=container_sas_uri,
            output_container_sas_uri=output_container_sas_uri,
            mode=mode,
            blob_name=blob_name,
            poll_interval=poll_interval,
        )
