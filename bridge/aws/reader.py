"""AWS IoT's control plane as the bridge's `SourceReader`: re-reads and anti-entropy.

    async with AwsReader(cloud) as reader:
        view = await reader.read_device("lamp-1")   # None when the thing is gone
        async for view in reader.snapshot(): ...

Clients, rate budgets and the sorting of AWS errors are discovery's (`bridge.aws.clients`),
so the daemon and `iot-bridge discover` call AWS the same way. A `DeviceView` read here is
the whole truth at the time of reading, which is what the engine folds events against.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any, Self

from botocore.exceptions import BotoCoreError, ClientError

from bridge.aws.clients import AwsApi, open_clients
from bridge.aws.ratelimit import RateLimiter
from bridge.core.view import CLASSIC, DeviceView, ShadowView
from bridge.errors import Denied, Gone, SourceError

if TYPE_CHECKING:
    from types import TracebackType

    from bridge.config import CloudSettings

__all__ = ["READER_RATES", "AwsReader"]

# Requests per second for the calls discovery does not make, a little under AWS IoT's
# published per-account limits; the rest are discovery's DEFAULT_RATES.
READER_RATES: Mapping[str, float] = {
    "describe_thing": 300,
    "list_thing_groups_for_thing": 90,
}
_AWS_ERRORS = (ClientError, BotoCoreError, Denied)


class AwsReader:
    """Reads things, their static groups and shadows, concurrently within rate budgets.

    Args:
        cloud: Control plane endpoint and credentials (`AWS_*`).
        concurrency: Devices (or groups) read at once; each reads its parts one call at
            a time, so at most this many requests are in flight, plus one listing.
        limiter: A rate budget to share with other AWS callers of the same account;
            by default one of its own.
        rate_scale: Multiplies the budgets of a limiter of its own; 0 switches them off
            (stand-ins only: real AWS throttles).
    """

    def __init__(
        self,
        cloud: CloudSettings,
        *,
        concurrency: int = 16,
        limiter: RateLimiter | None = None,
        rate_scale: float = 1.0,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self._cloud = cloud
        self._concurrency = concurrency
        self._limiter = limiter or RateLimiter(READER_RATES, scale=rate_scale)
        self._slots = asyncio.Semaphore(concurrency)
        self._stack = contextlib.AsyncExitStack()
        self._apis: tuple[AwsApi, AwsApi] | None = None
        # Whether a group is dynamic never changes while it exists; read_groups refreshes.
        self._dynamic: dict[str, bool] = {}

    async def __aenter__(self) -> Self:
        clients = open_clients(self._cloud, self._limiter, concurrency=self._concurrency + 1)
        self._apis = await self._stack.enter_async_context(clients)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._apis = None
        await self._stack.aclose()

    @property
    def _iot(self) -> AwsApi:
        if self._apis is None:
            raise RuntimeError("AwsReader is used outside `async with`")
        return self._apis[0]

    @property
    def _data(self) -> AwsApi:
        if self._apis is None:
            raise RuntimeError("AwsReader is used outside `async with`")
        return self._apis[1]

    async def read_device(self, device_id: str) -> DeviceView | None:
        """The thing's registry entry, direct static groups and shadows; None when gone."""
        async with self._slots:
            return await self._read(device_id, None)

    async def read_groups(self) -> dict[str, str | None]:
        """Every thing group and its parent (None at the top)."""
        parents: dict[str, str | None] = {}

        async def describe(name: str) -> None:
            async with self._slots:
                detail = await self._describe_group(name)
            if detail is not None:
                meta = detail.get("thingGroupMetadata") or {}
                parents[name] = meta.get("parentGroupName") or detail.get("parentGroupName")

        names: list[str] = []
        try:
            async with asyncio.TaskGroup() as group:
                async for listed in self._iot.pages("list_thing_groups", "thingGroups"):
                    names.append(listed["groupName"])
                    group.create_task(describe(listed["groupName"]))
        except BaseExceptionGroup as failed:
            raise _source_error(failed, "reading thing groups") from failed
        return {name: parents[name] for name in names if name in parents}

    async def snapshot(self) -> AsyncIterator[DeviceView]:
        """Every existing thing's current state, as reads finish (in no particular order).

        A failed read raises SourceError and ends the snapshot: a missing device must never
        look like a deleted one. Leaving the loop early stops the reads in flight.
        """
        out: asyncio.Queue[DeviceView | Exception | None] = asyncio.Queue(self._concurrency)
        producer = asyncio.create_task(self._produce(out), name="bridge[aws].snapshot")
        try:
            while (item := await out.get()) is not None:
                if isinstance(item, Exception):
                    raise item
                yield item
        finally:
            producer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await producer

    async def _produce(self, out: asyncio.Queue[DeviceView | Exception | None]) -> None:
        # Bounds what is read but not yet taken: the consumer may be slower than AWS.
        window = asyncio.Semaphore(self._concurrency)

        async def read(listed: dict[str, Any]) -> None:
            try:
                async with self._slots:
                    view = await self._read(listed["thingName"], listed)
                if view is not None:
                    await out.put(view)
            finally:
                window.release()

        try:
            async with asyncio.TaskGroup() as group:
                async for listed in self._iot.pages("list_things", "things"):
                    await window.acquire()
                    group.create_task(read(listed))
        except BaseExceptionGroup as failed:
            # Handed to the consumer, who would otherwise wait for the end forever.
            try:
                error: Exception = _source_error(failed, "listing things")
            except Exception as unexpected:
                error = unexpected
            await out.put(error)
        else:
            await out.put(None)

    async def _read(self, name: str, listed: Mapping[str, Any] | None) -> DeviceView | None:
        """One device; `listed` is its ListThings entry, which saves the DescribeThing."""
        try:
            thing = listed or await self._iot.call("describe_thing", thingName=name)
            groups = [
                g["groupName"]
                async for g in self._iot.pages(
                    "list_thing_groups_for_thing", "thingGroups", thingName=name
                )
            ]
            static = [g for g in groups if not await self._is_dynamic(g)]
            shadows = await self._shadows(name)
        except Gone:
            return None  # deleted, before or while it was read
        except _AWS_ERRORS as exc:
            raise SourceError(f"reading thing {name}: {exc}", device_id=name) from exc
        version = thing.get("version")
        return DeviceView(
            device_id=name,
            thing_version=int(version) if version is not None else None,
            thing_type=thing.get("thingTypeName"),
            attributes=dict(thing.get("attributes") or {}),
            groups=frozenset(static),
            shadows=shadows,
        )

    async def _is_dynamic(self, group: str) -> bool:
        if group not in self._dynamic:
            await self._describe_group(group)
        # A group gone since the listing is no membership to mirror.
        return self._dynamic.get(group, True)

    async def _describe_group(self, name: str) -> dict[str, Any] | None:
        try:
            detail = await self._iot.call("describe_thing_group", thingGroupName=name)
        except Gone:
            self._dynamic.pop(name, None)
            return None
        except _AWS_ERRORS as exc:
            raise SourceError(f"reading thing group {name}: {exc}") from exc
        self._dynamic[name] = bool(detail.get("queryString"))  # dynamic groups have a query
        return detail

    async def _shadows(self, thing: str) -> dict[str, ShadowView]:
        shadows: dict[str, ShadowView] = {}
        for name in [None, *await self._named_shadows(thing)]:
            shadow = await self._shadow(thing, name)
            if shadow is not None:
                shadows[name or CLASSIC] = shadow
        return shadows

    async def _named_shadows(self, thing: str) -> list[str]:
        names: list[str] = []
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"thingName": thing, "pageSize": 100}
            if token:
                kwargs["nextToken"] = token
            page = await self._data.call("list_named_shadows_for_thing", **kwargs)
            names.extend(page.get("results", []))
            token = page.get("nextToken")
            if not token:
                return names

    async def _shadow(self, thing: str, name: str | None) -> ShadowView | None:
        kwargs = {"thingName": thing, **({"shadowName": name} if name else {})}
        try:
            answer = await self._data.call("get_thing_shadow", **kwargs)
        except Gone:
            return None  # no such shadow (or deleted meanwhile)
        raw = await answer["payload"].read()
        try:
            document = json.loads(raw)
            state = document.get("state") or {}
            return ShadowView(
                int(document["version"]), state.get("desired") or {}, state.get("reported") or {}
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            shadow = name or "classic"
            raise SourceError(
                f"{thing}: {shadow} shadow is not a shadow document", device_id=thing
            ) from exc


def _source_error(failed: BaseExceptionGroup[BaseException], doing: str) -> SourceError:
    """The first failure of a task group as a SourceError; anything else is re-raised."""
    first: BaseException = failed
    while isinstance(first, BaseExceptionGroup):
        first = first.exceptions[0]
    if isinstance(first, SourceError):
        return first
    if isinstance(first, (*_AWS_ERRORS, Gone)):
        return SourceError(f"{doing}: {first}")
    raise failed
