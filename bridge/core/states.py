"""Devices' migration states for per-message decisions, read in batches and cached briefly.

The relay asks for a device's state with every message. One store read per message was
40% of the daemon's CPU at 500 messages/s (profiled: a device sending less than once per
cache lifetime misses every time). Here every lookup that misses in the same turn of the
event loop joins one `get_devices` read, so the store sees one query per batch of misses,
not one per message, and a state changed in the store is seen at most `ttl` seconds late.
The reverse path also needs each device's thing type (its AWS topic templates name it):
with `thing_types` the same batch reads the devices' views too.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from bridge.core.machine import State
from bridge.core.store import Store

__all__ = ["StateCache"]

_MAX_CACHED = 200_000  # a flood of unknown names cannot grow the cache without bound


Facts = tuple[State | None, str | None]  # (state, thing type): (None, None) if unknown


class StateCache:
    """`await cache.get(device_id)`: its state (None when the store does not know it)."""

    def __init__(
        self,
        store: Store,
        ttl: float,
        *,
        thing_types: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._ttl = ttl
        self._thing_types = thing_types
        self._clock = clock
        self._cached: dict[str, tuple[Facts, float]] = {}
        self._pending: dict[str, asyncio.Future[Facts]] = {}
        self._scheduled = False
        self.reads = 0  # store reads made, for tests and metrics

    def forget(self, device_id: str) -> None:
        """Read `device_id` from the store next time."""
        self._cached.pop(device_id, None)

    async def get(self, device_id: str) -> State | None:
        return (await self.facts(device_id))[0]

    async def facts(self, device_id: str) -> Facts:
        """Its state and, when the cache reads thing types, its thing type."""
        cached = self._cached.get(device_id)
        if cached is not None and cached[1] > self._clock():
            return cached[0]
        future = self._pending.get(device_id)
        if future is None:
            loop = asyncio.get_running_loop()
            future = self._pending[device_id] = loop.create_future()
            if not self._scheduled:
                self._scheduled = True
                loop.call_soon(self._flush)
        # Shielded: a cancelled caller must not cancel the read other callers wait for.
        return await asyncio.shield(future)

    def _flush(self) -> None:
        self._scheduled = False
        batch, self._pending = self._pending, {}
        task = asyncio.get_running_loop().create_task(self._load(batch), name="states.load")
        task.add_done_callback(lambda _: None)  # the futures carry the outcome

    async def _load(self, batch: dict[str, asyncio.Future[Facts]]) -> None:
        self.reads += 1
        try:
            devices = await self._store.get_devices(list(batch))
            views = await self._store.get_views(list(devices)) if self._thing_types else {}
        except BaseException as exc:
            for future in batch.values():
                if not future.done():
                    future.set_exception(exc)
                    future.exception()  # retrieved here: a waiter that left must not warn
            if isinstance(exc, asyncio.CancelledError):
                raise
            return
        expires = self._clock() + self._ttl
        if len(self._cached) + len(batch) > _MAX_CACHED:
            self._cached.clear()
        for device_id, future in batch.items():
            device = devices.get(device_id)
            view = views.get(device_id)
            facts = (
                device.state if device is not None else None,
                view.thing_type if view is not None else None,
            )
            self._cached[device_id] = (facts, expires)
            if not future.done():
                future.set_result(facts)
