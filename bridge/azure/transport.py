"""One HTTPS request to IoT Hub's service API, paced, signed, retried and mapped to errors.

Each attempt first spends from the `RateBudget` (a retried request is charged again by the
hub too), then signs with the cached SAS token. 429, 500, 502, 503, 504 and connection
failures are retried with full-jitter backoff or Retry-After; an untrusted certificate and
any other 4xx are not. Keys, tokens and headers are never logged.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Self

import aiohttp
from yarl import URL

from bridge.azure.retry import HubStats, RetryPolicy, parse_retry_after
from bridge.azure.sas import SasTokenSource, ServiceConnectionString
from bridge.errors import HubConnectionError, HubError, HubThrottled, NotFound, PreconditionFailed
from bridge.logging import get_logger

if TYPE_CHECKING:
    from collections.abc import Collection
    from pathlib import Path
    from types import TracebackType

    from bridge.azure.budget import RateBudget
    from bridge.azure.quotas import Operation

__all__ = ["API_VERSION", "HubResponse", "HubTransport"]

API_VERSION = "2021-04-12"  # what azure-iot-hub 2.7 sends
_RETRIED_STATUSES = frozenset({429, 500, 502, 503, 504})
# A full job slot is no rate limit: backing off for seconds would not free it (see jobs.py).
_NOT_RETRIED_CODES = frozenset({"ThrottlingMaxActiveJobCountExceeded"})
_ERRORS: dict[int, type[HubError]] = {404: NotFound, 412: PreconditionFailed, 429: HubThrottled}
_log = get_logger("azure.hub")


@dataclass(frozen=True)
class HubResponse:
    """Status, headers and JSON body (None when empty, text when not JSON) of one answer."""

    status: int
    headers: Mapping[str, str]
    body: Any

    @property
    def etag(self) -> str | None:
        """The ETag header without its quotes."""
        value = self.headers.get("ETag")
        return value.strip('"') if value else None


def _decode(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", errors="replace")


def hub_error(response: HubResponse, device_id: str | None = None) -> HubError:
    """The exception for an error answer: code from `iothub-errorcode` or the body's Message."""
    body = response.body if isinstance(response.body, dict) else {}
    message = str(body.get("Message") or body.get("message") or response.body or "")
    code = response.headers.get("iothub-errorcode", "")
    if message.startswith("ErrorCode:"):
        prefix, _, rest = message.partition(";")
        code, message = code or prefix.removeprefix("ErrorCode:"), rest
    kind = _ERRORS.get(response.status, HubError)
    return kind(response.status, code or "Unknown", message, device_id=device_id)


def quote_etag(etag: str) -> str:
    """An etag as If-Match wants it, quoted once (`*` included, as azure-iot-hub does)."""
    return etag if len(etag) > 1 and etag[0] == etag[-1] == '"' else f'"{etag}"'


class HubTransport:
    """An aiohttp session to one hub, with keep-alive and TLS verification always on."""

    def __init__(
        self,
        connection: ServiceConnectionString,
        *,
        budget: RateBudget,
        retry: RetryPolicy,
        stats: HubStats,
        ca_bundle: str | Path | None = None,
        timeout: float = 30.0,
        max_connections: int = 100,
    ) -> None:
        self.connection = connection
        self.budget = budget
        self.retry = retry
        self.stats = stats
        self._tokens = SasTokenSource(connection)
        self._ca_bundle = ca_bundle
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Self:
        # Only the given bundle is trusted when there is one (the emulator's private CA).
        context = ssl.create_default_context(
            cafile=str(self._ca_bundle) if self._ca_bundle is not None else None
        )
        connector = aiohttp.TCPConnector(ssl=context, limit=self._max_connections)
        self._session = aiohttp.ClientSession(connector=connector, timeout=self._timeout)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    def url(self, path: str) -> URL:
        """`https://<HostName><path>?api-version=...`; `path` must be percent-encoded already."""
        separator = "&" if "?" in path else "?"
        text = f"https://{self.connection.host_name}{path}{separator}api-version={API_VERSION}"
        return URL(text, encoded=True)

    async def call(
        self,
        method: str,
        path: str,
        operation: Operation,
        *,
        body: Any = None,
        if_match: str | None = None,
        headers: Mapping[str, str] | None = None,
        cost: float = 1,
        accept: Collection[int] = (),
        device_id: str | None = None,
    ) -> HubResponse:
        """Send one request (retried as needed); error statuses not in `accept` raise."""
        data = None if body is None else json.dumps(body).encode()
        for attempt in range(1, self.retry.attempts + 1):
            await self.budget.acquire(operation, cost)
            self.stats.record("request", operation)
            try:
                response = await self._send(method, path, data, if_match, headers)
            except aiohttp.ClientConnectorCertificateError as error:
                self.stats.record("failed", operation)
                raise HubConnectionError(
                    f"TLS verification of {self.connection.host_name} failed "
                    f"({error.certificate_error}); pass ca_bundle= with the CA that issued "
                    "its certificate (IOTHUB_ROOT_CA for the emulator)",
                    device_id=device_id,
                ) from error
            except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, TimeoutError) as e:
                failure: HubError | HubConnectionError = HubConnectionError(
                    f"{method} {path}: {type(e).__name__}: {e}", device_id=device_id
                )
                retry_after, reason = None, type(e).__name__
            else:
                if response.status < 400 or response.status in accept:
                    return response
                failure = hub_error(response, device_id)
                retryable = response.status in _RETRIED_STATUSES
                retryable = retryable and failure.code not in _NOT_RETRIED_CODES
                if response.status == 429:
                    self.stats.record("throttled", operation)
                    if retryable:
                        self.budget.throttled(operation)
                if not retryable:
                    self.stats.record("failed", operation)
                    raise failure
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
                reason = f"{response.status} {failure.code}"
            if attempt == self.retry.attempts:
                break
            delay = self.retry.delay(attempt, retry_after)
            self.stats.record("retry", operation)
            _log.info(
                "azure.retry_scheduled",
                operation=operation.value,
                method=method,
                path=path,
                reason=reason,
                attempt=attempt,
                delay=round(delay, 3),
            )
            await asyncio.sleep(delay)
        self.stats.record("failed", operation)
        raise failure

    async def _send(
        self,
        method: str,
        path: str,
        data: bytes | None,
        if_match: str | None,
        extra: Mapping[str, str] | None,
    ) -> HubResponse:
        if self._session is None:
            raise RuntimeError("the IoT Hub client is not open; use `async with`")
        headers = {"Authorization": self._tokens.token(), "Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json; charset=utf-8"
        if if_match is not None:
            headers["If-Match"] = quote_etag(if_match)
        headers.update(extra or {})
        async with self._session.request(
            method, self.url(path), data=data, headers=headers
        ) as response:
            raw = await response.read()
            return HubResponse(response.status, response.headers, _decode(raw))
