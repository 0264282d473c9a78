"""aiobotocore clients for discovery, with rate budgets and AWS errors sorted into kinds."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from aiobotocore.session import get_session
from botocore.config import Config
from botocore.exceptions import ClientError

from bridge.aws.ratelimit import RateLimiter
from bridge.config import CloudSettings
from bridge.errors import Denied, Gone

__all__ = ["AwsApi", "ensure_reachable", "open_clients"]

_DENIED = {"AccessDeniedException", "UnauthorizedException", "AccessDenied", "ForbiddenException"}
_GONE = {"ResourceNotFoundException", "NotFoundException"}


def _sort(exc: ClientError) -> Exception:
    code = exc.response.get("Error", {}).get("Code", "")
    if code in _DENIED:
        return Denied(str(exc))
    if code in _GONE:
        return Gone(str(exc))
    return exc


class AwsApi:
    """Calls one AWS client under the rate budget of each operation."""

    def __init__(self, client: Any, limiter: RateLimiter) -> None:
        self.client = client
        self.limiter = limiter

    async def call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        """One request; raises Denied or Gone for those answers."""
        await self.limiter.acquire(operation)
        try:
            result: dict[str, Any] = await getattr(self.client, operation)(**kwargs)
        except ClientError as exc:
            raise _sort(exc) from exc
        return result

    async def pages(self, operation: str, key: str, **kwargs: Any) -> AsyncIterator[Any]:
        """Every item under `key` across all pages, each page within the rate budget."""
        pages = self.client.get_paginator(operation).paginate(**kwargs).__aiter__()
        while True:
            await self.limiter.acquire(operation)
            try:
                page = await pages.__anext__()
            except StopAsyncIteration:
                return
            except ClientError as exc:
                raise _sort(exc) from exc
            for item in page.get(key, []):
                yield item


def _client_args(cloud: CloudSettings, config: Config) -> dict[str, Any]:
    """create_client's arguments for the configured account, region and endpoint."""
    args: dict[str, Any] = {"region_name": cloud.AWS_REGION, "config": config}
    if cloud.AWS_ENDPOINT_URL:
        args["endpoint_url"] = cloud.AWS_ENDPOINT_URL
    if cloud.AWS_ACCESS_KEY_ID and cloud.AWS_SECRET_ACCESS_KEY:
        args["aws_access_key_id"] = cloud.AWS_ACCESS_KEY_ID.get_secret_value()
        args["aws_secret_access_key"] = cloud.AWS_SECRET_ACCESS_KEY.get_secret_value()
    return args


async def ensure_reachable(cloud: CloudSettings) -> None:
    """Fail within seconds when AWS cannot be reached at all.

    The working clients retry a connection failure ten times with backoff (about 80 s),
    which rides out a blip mid-crawl but leaves an operator who mistyped AWS_ENDPOINT_URL
    waiting. One cheap call with a single retry answers first: a connection or TLS failure
    goes up (the command line says which setting to check); anything AWS itself answers,
    even a refusal, means it is reachable, and the real calls deal with it.
    """
    config = Config(retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=5)
    async with get_session().create_client("iot", **_client_args(cloud, config)) as iot:
        with contextlib.suppress(ClientError):
            await iot.describe_endpoint(endpointType="iot:Data-ATS")


@contextlib.asynccontextmanager
async def open_clients(
    cloud: CloudSettings, limiter: RateLimiter, *, concurrency: int
) -> AsyncIterator[tuple[AwsApi, AwsApi]]:
    """(iot, iot-data) clients for the configured account and region."""
    config = Config(
        retries={"max_attempts": 10, "mode": "standard"},  # backs off on throttling
        max_pool_connections=concurrency,
        connect_timeout=10,
        read_timeout=60,
    )
    common = _client_args(cloud, config)
    session = get_session()
    async with (
        session.create_client("iot", **common) as iot,
        session.create_client("iot-data", **common) as data,
    ):
        yield AwsApi(iot, limiter), AwsApi(data, limiter)
