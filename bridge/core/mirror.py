"""Workers that bring the target up to date with each device's stored view.

One SYNC message per device at a time (the outbox hands out each device's oldest only),
so a device's writes never overtake each other, while different devices go in parallel
up to `concurrency`. A message is acked together with the state change it caused; a
crash before that repeats the write, which is harmless because every write is a full,
idempotent one. Devices still to be created go in batches through `Target.provision`
when the target offers it (bulk registry calls).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from bridge.core.groups import group_paths
from bridge.core.machine import Event, State
from bridge.core.ports import DeletePolicy, Rejected, Target
from bridge.core.store import Device, OutboxItem, Store
from bridge.core.view import DeviceView
from bridge.logging import get_logger

__all__ = ["Mirror", "MirrorStats"]

_log = get_logger("core.mirror")
_MAX_BACKOFF = 60.0


@dataclass
class MirrorStats:
    """Counters the daemon turns into metrics."""

    applied: dict[str, int] = field(default_factory=dict)
    retries: int = 0
    rejected: int = 0
    lags: list[float] = field(default_factory=list)  # drained by the metrics exporter

    def count(self, outcome: str) -> None:
        self.applied[outcome] = self.applied.get(outcome, 0) + 1


class Mirror:
    """Claims SYNC messages and applies them to the target."""

    def __init__(
        self,
        store: Store,
        target: Target,
        parents: Callable[[], Mapping[str, str | None]],
        *,
        owner: str,
        delete_policy: DeletePolicy = DeletePolicy.DELETE,
        concurrency: int = 32,
        lease_seconds: float = 120.0,
        idle_poll: float = 0.5,
        retry_base: float = 0.5,
    ) -> None:
        self._store = store
        self._target = target
        self._parents = parents
        self._owner = owner
        self._delete_policy = delete_policy
        self._concurrency = concurrency
        self._lease = lease_seconds
        self._idle_poll = idle_poll
        self._retry_base = retry_base
        self._wake = asyncio.Event()
        self._pending: dict[str, float] = {}  # device -> monotonic time of oldest unapplied change
        self._in_flight: set[asyncio.Task[None]] = set()
        self.stats = MirrorStats()

    def changed(self, first_seen: Mapping[str, float]) -> None:
        """Tell the workers that devices have new changes (called by the ingest)."""
        for device_id, at in first_seen.items():
            self._pending.setdefault(device_id, at)
        self._wake.set()

    @property
    def busy(self) -> int:
        """Messages being applied right now."""
        return len(self._in_flight)

    async def run(self) -> None:
        """Claim and apply until cancelled; on cancellation wait for writes in flight."""
        slots = asyncio.Semaphore(self._concurrency)
        try:
            while True:
                free = self._concurrency - len(self._in_flight)
                items = await self._store.claim(self._owner, free, self._lease) if free else []
                if not items:
                    self._wake.clear()
                    await self._sleep()
                    continue
                for item in items:
                    await slots.acquire()
                    task = asyncio.create_task(self._apply(item), name=f"sync-{item.device_id}")
                    self._in_flight.add(task)
                    task.add_done_callback(self._in_flight.discard)
                    task.add_done_callback(lambda _t: slots.release())
        finally:
            await self.drain()

    async def drain(self) -> None:
        """Wait for the writes in flight (graceful shutdown)."""
        if self._in_flight:
            await asyncio.gather(*self._in_flight, return_exceptions=True)

    async def _sleep(self) -> None:
        try:
            async with asyncio.timeout(self._idle_poll):
                await self._wake.wait()
        except TimeoutError:
            pass

    async def _apply(self, item: OutboxItem) -> None:
        try:
            device = await self._store.get_device(item.device_id)
            view = (await self._store.get_views([item.device_id])).get(item.device_id)
            if device is None or view is None:
                await self._store.ack([item.id])
                return
            events, fingerprint = await self._sync(device, view)
            await self._store.finish(item, events, fingerprint=fingerprint)
            self._record(item.device_id, "deleted" if not view.exists else "synced")
        except Rejected as exc:
            self.stats.rejected += 1
            _log.error("target rejected the device", device_id=item.device_id, reason=str(exc))
            await self._store.finish(item, [Event.FAIL], fingerprint=None, reason=str(exc))
            await self._store.dead_letter("azure", str(exc), {"device_id": item.device_id})
            self._record(item.device_id, "rejected")
        except asyncio.CancelledError:
            raise  # the claim expires and another worker (or the next start) repeats it
        except Exception as exc:  # any failure is retried; nothing is dropped
            backoff = min(_MAX_BACKOFF, self._retry_base * 2 ** min(item.attempts, 8))
            delay = backoff * random.uniform(0.5, 1)  # noqa: S311 - jitter, not a secret
            self.stats.retries += 1
            _log.warning(
                "sync failed, will retry",
                device_id=item.device_id,
                attempt=item.attempts,
                retry_in=round(delay, 2),
                error=f"{type(exc).__name__}: {exc}",
            )
            await self._store.retry(item.id, delay, f"{type(exc).__name__}: {exc}")

    async def _sync(self, device: Device, view: DeviceView) -> tuple[list[Event], str | None]:
        """Make the target match `view`; return the events to record and the fingerprint."""
        state = device.state
        if not view.exists:
            if state is State.DELETED:
                return [], device.fingerprint
            await self._target.remove(view.device_id, self._delete_policy)
            return [Event.DELETE], None
        if state is State.FAILED:
            return [], device.fingerprint  # waits for an operator's retry
        events: list[Event] = []
        if state is State.DELETED:
            events.append(Event.REDISCOVER)
            state = State.DISCOVERED
        paths = group_paths(view.groups, self._parents())
        if state is State.DISCOVERED:
            fingerprint = await self._target.apply(view, paths, create=True)
            return [*events, Event.PROVISION, Event.PROVISIONED], fingerprint
        if state is State.PROVISIONING:
            fingerprint = await self._target.apply(view, paths, create=True)
            return [Event.PROVISIONED], fingerprint
        fingerprint = self._target.fingerprint(view, paths)
        if fingerprint != device.fingerprint:
            fingerprint = await self._target.apply(view, paths, create=False)
        return ([Event.SYNCED] if state is State.SYNCING else []), fingerprint

    def _record(self, device_id: str, outcome: str) -> None:
        self.stats.count(outcome)
        first_seen = self._pending.pop(device_id, None)
        if first_seen is not None:
            self.stats.lags.append(time.monotonic() - first_seen)
