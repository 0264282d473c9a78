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
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bridge.core.groups import group_paths
from bridge.core.machine import Event, State
from bridge.core.ports import DeletePolicy, Target
from bridge.core.store import ChangeSet, Device, OutboxItem, Store
from bridge.core.view import DeviceView
from bridge.errors import Rejected
from bridge.logging import get_logger

__all__ = ["Mirror", "MirrorStats"]

_log = get_logger("mirror.workers")
# A FINALIZED twin is the device's and Azure's now, so AWS-side changes no longer reach it
# (a deleted thing still follows the delete policy). A FAILED device waits for a change on
# AWS (`_may_retry`).
_LEFT_ALONE = frozenset({State.FINALIZED})
_MAX_BACKOFF = 60.0
_CLAIM_BATCH = 200  # messages claimed at a time, at most; the slots bound what runs at once
_CLAIM_PER_SLOT = 8  # enough to fill bulk creates, few enough that claims do not expire
_BULK = 100  # devices per bulk create (IoT Hub's limit per registry call)

BulkProvision = Callable[
    [Sequence[tuple[DeviceView, Mapping[str, str]]]], Awaitable[dict[str, str | Exception]]
]


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
        lease_seconds: float = 15.0,
        idle_poll: float = 0.5,
        retry_base: float = 0.5,
        bulk: BulkProvision | None = None,
        drain_seconds: float = 10.0,
        write_timeout: float = 120.0,
    ) -> None:
        self._store = store
        self._target = target
        self._parents = parents
        self._owner = owner
        self._delete_policy = delete_policy
        self._concurrency = concurrency  # jobs at once; a bulk create is one job
        self._lease = lease_seconds
        self._idle_poll = idle_poll
        self._retry_base = retry_base
        self._bulk = bulk  # the target's bulk create, when it has one
        self._drain_seconds = drain_seconds
        # Claims are renewed while their write runs, so a write that never returns would
        # hold its device forever: past this it is cancelled and retried like a failure.
        self._write_timeout = write_timeout
        self._wake = asyncio.Event()
        self._pending: dict[str, float] = {}  # device -> monotonic time of oldest unapplied change
        self._in_flight: set[asyncio.Task[None]] = set()
        self._items_in_flight: set[int] = set()  # outbox ids being applied here
        self.stats = MirrorStats()
        # device -> fingerprint of the view IoT Hub or the bridge refused (None: no twin)
        self._refused: dict[str, str | None] = {}

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
        """Claim and apply until cancelled; on cancellation wait for writes in flight.

        Claims are this worker's `owner`'s: a restart takes back what its predecessor held
        at once, and a heartbeat renews them while writes run, so a short lease frees a
        dead replica's claims within seconds without expiring a slow write's.
        """
        taken_back = await self._store.release_claims(self._owner)
        if taken_back:
            _log.info("mirror.claims_taken_back", count=taken_back, owner=self._owner)
        heartbeat = asyncio.create_task(self._renew_claims(), name="mirror.claims_heartbeat")
        slots = asyncio.Semaphore(self._concurrency)
        try:
            while True:
                async with slots:  # claim only with room to start: claims expire
                    free = self._concurrency - len(self._in_flight)
                size = min(_CLAIM_BATCH, max(free, 1) * _CLAIM_PER_SLOT)
                items = await self._store.claim(self._owner, size, self._lease)
                # A claim of ours that expired while its write still runs (the loop stalled
                # past the lease) comes back: the write in flight carries on, alone.
                items = [item for item in items if item.id not in self._items_in_flight]
                if not items:
                    self._wake.clear()
                    await self._sleep()
                    continue
                self._items_in_flight.update(item.id for item in items)
                try:
                    jobs = await self._plan(items)
                except BaseException:
                    self._items_in_flight.difference_update(item.id for item in items)
                    raise
                for job in jobs:
                    await slots.acquire()
                    task = asyncio.create_task(job)
                    self._in_flight.add(task)
                    task.add_done_callback(self._in_flight.discard)
                    task.add_done_callback(lambda _t: slots.release())
        finally:
            try:
                await self.drain()
            finally:
                heartbeat.cancel()

    async def _renew_claims(self) -> None:
        while True:
            await asyncio.sleep(self._lease / 3)
            try:
                await self._store.renew_claims(self._owner, self._lease)
            except Exception as exc:  # the next beat tries again; claims outlive one miss
                _log.warning("mirror.claims_renewal_failed", error=str(exc))

    async def _plan(self, items: list[OutboxItem]) -> list[Coroutine[Any, Any, None]]:
        """One job per item, except devices still to be created: those go in bulk."""
        ids = [item.device_id for item in items]
        devices = await self._store.get_devices(ids)
        views = await self._store.get_views(ids)
        jobs: list[Coroutine[Any, Any, None]] = []
        new: list[tuple[OutboxItem, DeviceView]] = []
        for item in items:
            device, view = devices.get(item.device_id), views.get(item.device_id)
            fresh = device is not None and device.state is State.DISCOVERED
            if self._bulk is not None and fresh and view is not None and view.exists:
                new.append((item, view))
            else:
                jobs.append(self._apply(item, device, view))
        if len(new) == 1:
            jobs.append(self._apply(new[0][0], devices[new[0][0].device_id], new[0][1]))
        elif new:
            jobs += [self._provision(new[i : i + _BULK]) for i in range(0, len(new), _BULK)]
        return jobs

    async def drain(self) -> None:
        """Wait for the writes in flight (graceful shutdown), for `drain_seconds` at most.

        A write still waiting then (on a rate budget at a low tier, say) is cancelled: its
        claim expires and the next start repeats it, so nothing is lost by not waiting.
        """
        if not self._in_flight:
            return
        _done, pending = await asyncio.wait(self._in_flight, timeout=self._drain_seconds)
        for task in pending:
            task.cancel()
        if pending:
            _log.warning("mirror.writes_left_for_next_start", count=len(pending))
            await asyncio.wait(pending, timeout=5)

    async def _sleep(self) -> None:
        try:
            async with asyncio.timeout(self._idle_poll):
                await self._wake.wait()
        except TimeoutError:
            pass

    async def _apply(
        self, item: OutboxItem, device: Device | None, view: DeviceView | None
    ) -> None:
        try:
            if device is None or view is None:
                await self._store.ack([item.id])
                return
            async with asyncio.timeout(self._write_timeout):
                events, fingerprint = await self._sync(device, view)
            await self._store.finish(item, events, fingerprint=fingerprint)
            self._record(item.device_id, "deleted" if not view.exists else "synced")
        except Rejected as exc:
            await self._reject(item, exc, view)
        except asyncio.CancelledError:
            raise  # the claim expires and another worker (or the next start) repeats it
        except Exception as exc:  # any failure is retried; nothing is dropped
            await self._retry(item, exc)
        finally:
            self._items_in_flight.discard(item.id)

    async def _provision(self, batch: list[tuple[OutboxItem, DeviceView]]) -> None:
        """Create devices with their twins in one bulk call; each succeeds or fails alone."""
        try:
            await self._provision_batch(batch)
        finally:
            self._items_in_flight.difference_update(item.id for item, _ in batch)

    async def _provision_batch(self, batch: list[tuple[OutboxItem, DeviceView]]) -> None:
        assert self._bulk is not None
        parents = self._parents()
        try:
            async with asyncio.timeout(self._write_timeout):
                results = await self._bulk([(v, group_paths(v.groups, parents)) for _, v in batch])
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the whole call failed: every device is retried
            for item, _ in batch:
                await self._retry(item, exc)
            return
        follow_up: set[str] = set()
        for item, view in batch:
            outcome = results.get(item.device_id)
            if isinstance(outcome, str):
                events = [Event.PROVISION, Event.PROVISIONED]
                await self._store.finish(item, events, fingerprint=outcome)
                self._record(item.device_id, "synced")
                # A bulk create may write less than a full sync (no module reported state):
                # whatever it left out goes through the normal path next.
                if outcome != self._target.fingerprint(view, group_paths(view.groups, parents)):
                    follow_up.add(item.device_id)
            elif isinstance(outcome, Rejected):
                await self._reject(item, outcome, view)
            else:
                await self._retry(item, outcome or RuntimeError("no result from bulk call"))
        if follow_up:
            await self._store.save_changes(ChangeSet(sync=follow_up))
            self.changed(dict.fromkeys(follow_up, time.monotonic()))

    async def _reject(
        self, item: OutboxItem, exc: Rejected, view: DeviceView | None = None
    ) -> None:
        self.stats.rejected += 1
        self._refused[item.device_id] = self._wanted(view) if view is not None else None
        _log.error("mirror.device_rejected", device_id=item.device_id, reason=str(exc))
        await self._store.finish(item, [Event.FAIL], fingerprint=None, reason=str(exc))
        await self._store.dead_letter("azure", str(exc), {"device_id": item.device_id})
        self._record(item.device_id, "rejected")

    async def _retry(self, item: OutboxItem, exc: BaseException) -> None:
        backoff = min(_MAX_BACKOFF, self._retry_base * 2 ** min(item.attempts, 8))
        delay = backoff * random.uniform(0.5, 1)  # noqa: S311 - jitter, not a secret
        self.stats.retries += 1
        _log.warning(
            "mirror.sync_retry_scheduled",
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
        if state in _LEFT_ALONE or (state is State.FAILED and not self._may_retry(device, view)):
            return [], device.fingerprint
        events: list[Event] = []
        if state is State.FAILED:
            # Refused before (a twin over IoT Hub's limits, say): AWS changed the device
            # since, so it gets another try from the top instead of staying stale for good.
            _log.info("mirror.failed_device_retried", device_id=view.device_id)
            events.append(Event.RETRY)
            state = State.DISCOVERED
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
            fingerprint = await self._target.apply(
                view, paths, create=False, previous=device.fingerprint
            )
        return ([Event.SYNCED] if state is State.SYNCING else []), fingerprint

    def _wanted(self, view: DeviceView) -> str | None:
        """The fingerprint of what `view` would write; None when the bridge refuses it."""
        try:
            return self._target.fingerprint(view, group_paths(view.groups, self._parents()))
        except Rejected:
            return None

    def _may_retry(self, device: Device, view: DeviceView) -> bool:
        """Whether a FAILED device has changed since it was refused: what it would write now
        differs, or the bridge refuses it for another reason (said again, with it)."""
        try:
            wanted = self._target.fingerprint(view, group_paths(view.groups, self._parents()))
        except Rejected as exc:
            return str(exc) != device.reason
        # Unknown after a restart: one more try tells (and is said again if refused).
        return device.device_id not in self._refused or self._refused[device.device_id] != wanted

    def _record(self, device_id: str, outcome: str) -> None:
        self.stats.count(outcome)
        first_seen = self._pending.pop(device_id, None)
        if first_seen is not None:
            self.stats.lags.append(time.monotonic() - first_seen)
