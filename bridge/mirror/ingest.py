"""Source events and fresh reads into stored views, in batches, acknowledged once durable.

The ingest is the only writer of views in a replica: every change, whether an MQTT event,
a re-read of one thing or an anti-entropy pass, goes through `_commit`, one batch at a
time, so a read-fold-write never races another. A delivery is acknowledged to the source
only after its batch committed: a crash before that redelivers it, and folding is
idempotent, so nothing accepted is lost and nothing is applied twice.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from bridge.core.events import (
    DeviceEvent,
    GroupChanged,
    MembershipChanged,
    ShadowChanged,
    SourceEvent,
    ThingChanged,
)
from bridge.core.groups import descendants
from bridge.core.ports import Delivery, Source, SourceReader
from bridge.core.store import ChangeSet, Store
from bridge.core.view import DeviceView, Merged, adopt, fold, merge
from bridge.logging import get_logger

__all__ = ["Fresh", "Ingest", "IngestStats"]

_T = TypeVar("_T")
_log = get_logger("mirror.ingest")
_QUEUE_BOUND = 10_000
_READERS = 8  # single reads of the source at once (re-reads after associations, doubts)


@dataclass(frozen=True, slots=True)
class Fresh:
    """A full read of one device from the source's control plane, started at `read_at_ms`."""

    view: DeviceView
    read_at_ms: int
    drift_check: bool = False  # count a difference from the stored view as drift
    # The stored view when this read was asked for. A read started after that view was
    # committed is newer than all of it: if the store still holds it, the read is taken
    # whole, settling what an earlier fold could not order (`view.adopt`).
    expect: DeviceView | None = None


@dataclass
class IngestStats:
    """Counters the daemon turns into metrics; plain ints so the core needs no Prometheus."""

    received: dict[str, int] = field(default_factory=dict)
    dead_letters: int = 0
    stale: int = 0
    drift: int = 0
    batches: int = 0
    rereads: int = 0  # reads that contradicted events, so the device was read again
    unsettled: int = 0  # of those, read again and overtaken by events again: left as stored

    def count(self, kind: str) -> None:
        self.received[kind] = self.received.get(kind, 0) + 1


def _kind(event: SourceEvent) -> str:
    return type(event).__name__


class Ingest:
    """Folds deliveries and fresh reads into the store and queues the devices to sync."""

    def __init__(
        self,
        store: Store,
        *,
        reader: SourceReader | None = None,
        on_commit: Callable[[dict[str, float]], None] | None = None,
        batch_size: int = 500,
    ) -> None:
        self._store = store
        self._reader = reader
        self._on_commit = on_commit  # device -> monotonic time of its oldest pending change
        self._batch_size = batch_size
        self._deliveries: asyncio.Queue[Delivery] = asyncio.Queue(_QUEUE_BOUND)
        self._fresh: asyncio.Queue[Fresh] = asyncio.Queue(_QUEUE_BOUND)
        # Devices to read again: after an association event (None), or to settle a read
        # that contradicted the store (the stored view it must still match).
        self._refresh: asyncio.Queue[tuple[str, DeviceView | None]] = asyncio.Queue()
        self._lock = asyncio.Lock()
        self._rereading = 0  # single reads in flight
        # Per device, when the newest full read folded in started: reads of one device can
        # be folded out of order (a pass's read after a later single read). About 100
        # bytes a device; a restart forgets it, as every read before it is folded by then.
        self._last_read: dict[str, int] = {}
        self._parents: dict[str, str | None] = {}
        self.stats = IngestStats()

    @property
    def parents(self) -> dict[str, str | None]:
        """The thing-group hierarchy as last committed (group -> parent)."""
        return self._parents

    async def load(self) -> None:
        """Read the stored group hierarchy; call once before `run`."""
        self._parents = await self._store.group_parents()

    async def submit(self, fresh: Fresh) -> None:
        """Queue a full read for folding (waits when the queue is full)."""
        await self._fresh.put(fresh)

    async def submit_groups(self, parents: dict[str, str | None]) -> None:
        """Replace the hierarchy with a full read of it; members of moved groups resync."""
        async with self._lock:
            changed: dict[str, DeviceView] = {}
            changes = await self._group_changes(parents, changed)
            if changes:
                await self._store.save_changes(replace(changes, views=list(changed.values())))
                self._notify(changes.sync, time.monotonic())

    async def flush(self) -> None:
        """Wait until every queued delivery, re-read and fresh read has been committed."""
        queues: tuple[asyncio.Queue[Any], ...] = (self._deliveries, self._refresh, self._fresh)
        while True:
            for queue in queues:
                await queue.join()
            # A committed read may have asked for another read, and that one for a commit.
            if not any(queue.qsize() for queue in queues) and not self._rereading:
                return

    async def run(self, source: Source | None) -> None:
        """Consume `source` (if any) and the fresh reads until cancelled."""
        async with asyncio.TaskGroup() as tasks:
            if source is not None:
                tasks.create_task(self._pump(source), name="ingest-pump")
            tasks.create_task(self._deliveries_loop(), name="ingest-deliveries")
            tasks.create_task(self._fresh_loop(), name="ingest-fresh")
            if self._reader is not None:
                for worker in range(_READERS):
                    tasks.create_task(
                        self._refresh_loop(self._reader), name=f"ingest-refresh-{worker}"
                    )

    async def _pump(self, source: Source) -> None:
        async for delivery in source.deliveries():
            await self._deliveries.put(delivery)

    async def _batch(self, queue: asyncio.Queue[_T]) -> list[_T]:
        batch = [await queue.get()]
        while len(batch) < self._batch_size:
            try:
                batch.append(queue.get_nowait())
            except asyncio.QueueEmpty:
                break
        return batch

    async def _deliveries_loop(self) -> None:
        while True:
            batch = await self._batch(self._deliveries)
            async with self._lock:
                await self._commit_deliveries(batch)
            for delivery in batch:
                delivery.ack()
                self._deliveries.task_done()

    async def _fresh_loop(self) -> None:
        while True:
            batch = await self._batch(self._fresh)
            async with self._lock:
                await self._commit_fresh(batch)
            for _ in batch:
                self._fresh.task_done()

    async def _refresh_loop(self, reader: SourceReader) -> None:
        while True:
            device_id, expect = await self._refresh.get()
            self._rereading += 1
            try:
                read_at = int(time.time() * 1000)
                view = await reader.read_device(device_id)
                fresh = view or DeviceView(device_id, exists=False)
                await self.submit(Fresh(fresh, read_at, expect=expect))
            except Exception as exc:  # anti-entropy repairs what this misses
                _log.warning("mirror.refresh_failed", device_id=device_id, error=str(exc))
            finally:
                self._rereading -= 1
                self._refresh.task_done()

    async def _commit_deliveries(self, batch: list[Delivery]) -> None:  # noqa: C901, PLR0912 - one pass sorts every kind of delivery
        events: list[tuple[DeviceEvent, float]] = []
        groups: list[GroupChanged] = []
        dead: list[tuple[str, str, dict[str, str]]] = []
        for delivery in batch:
            event = delivery.event
            if event is None:
                dead.append(("aws", delivery.error or "unreadable", _raw(delivery)))
                continue
            self.stats.count(_kind(event))
            if isinstance(event, ThingChanged) and event.version is None:
                if self._reader is not None:  # an association: read the thing again
                    self._refresh.put_nowait((event.device_id, None))
            elif isinstance(event, ThingChanged | ShadowChanged | MembershipChanged):
                events.append((event, delivery.received_at))
            elif isinstance(event, GroupChanged):
                groups.append(event)
            # Presence and thing-type events do not change what is mirrored.
        self.stats.dead_letters += len(dead)
        for _source, reason, raw in dead:
            _log.warning("mirror.dead_letter", reason=reason, topic=raw["topic"])
        views = await self._store.get_views({event.device_id for event, _ in events})
        changed: dict[str, DeviceView] = {}
        first_seen: dict[str, float] = {}
        for event, received_at in events:
            device_id = event.device_id
            current = changed.get(device_id) or views.get(device_id) or DeviceView(device_id)
            after = fold(current, event)
            if after is None:
                self.stats.stale += 1
                continue
            changed[device_id] = after
            first_seen.setdefault(device_id, received_at)
        group_changes = ChangeSet()
        if groups:
            parents = dict(self._parents)
            for group_event in groups:
                if group_event.deleted:
                    parents.pop(group_event.group, None)
                else:
                    parents[group_event.group] = group_event.parent
            group_changes = await self._group_changes(parents, changed)
        changes = ChangeSet(
            views=list(changed.values()),
            sync=set(changed) | set(group_changes.sync),
            groups=group_changes.groups,
            deleted_groups=group_changes.deleted_groups,
            dead_letters=dead,
        )
        if changes:
            await self._store.save_changes(changes)
            self.stats.batches += 1
        now = time.monotonic()
        self._notify(group_changes.sync, now)
        if self._on_commit is not None and first_seen:
            self._on_commit(first_seen)

    async def _group_changes(
        self, parents: dict[str, str | None], changed: dict[str, DeviceView]
    ) -> ChangeSet:
        """Members of moved groups and their subgroups resync; deleted groups lose members.

        Views of members that leave a deleted group are added to `changed`.
        """
        before = self._parents
        gone = set(before) - set(parents)
        moved = {g for g, p in parents.items() if before.get(g, ...) != p}
        reached: set[str] = set()
        for group in moved:
            reached |= descendants(group, parents)
        for group in gone:
            reached |= descendants(group, before)
        members = await self._store.members(reached) if reached else []
        if gone:
            loaded = await self._store.get_views([m for m in members if m not in changed])
            for device_id in members:
                view = changed.get(device_id) or loaded.get(device_id)
                if view is not None and view.groups & gone:
                    changed[device_id] = replace(view, groups=view.groups - gone)
        self._parents = parents
        return ChangeSet(
            sync=set(members), groups={g: parents[g] for g in moved}, deleted_groups=gone
        )

    async def fold(self, batch: list[Fresh], *, defer_new: bool = False) -> list[DeviceView]:
        """Fold full reads in now; with `defer_new`, devices not stored before get no SYNC
        and their views are returned, for the caller to create in bulk (initial sync)."""
        async with self._lock:
            return await self._commit_fresh(batch, defer_new=defer_new)

    async def _commit_fresh(
        self, batch: list[Fresh], *, defer_new: bool = False
    ) -> list[DeviceView]:
        latest: dict[str, Fresh] = {}
        for fresh in batch:
            latest[fresh.view.device_id] = fresh
        stored = await self._store.get_views(latest)
        changed: list[DeviceView] = []
        deferred: list[DeviceView] = []
        reread: dict[str, DeviceView] = {}
        for device_id, fresh in latest.items():
            current = stored.get(device_id)
            merged = self._merged(current, fresh)
            after = merged.view
            if merged.unsure and current is not None:
                if fresh.expect is None:
                    reread[device_id] = after or current
                else:
                    # A read asked for to settle a doubt, overtaken by new events: the
                    # stored side stays (the safe one); the next pass asks again. Reading
                    # again at once could chase a device that changes all the time.
                    self.stats.unsettled += 1
                    _log.info("mirror.read_unsettled", device_id=device_id)
            if after is None:
                continue
            if fresh.drift_check and device_id in stored:
                self.stats.drift += 1
                _log.info("mirror.source_drift_repaired", device_id=device_id)
            changed.append(after)
            if defer_new and device_id not in stored and after.exists:
                deferred.append(after)
        if changed:
            skip = {view.device_id for view in deferred}
            sync = {v.device_id for v in changed} - skip
            await self._store.save_changes(ChangeSet(views=changed, sync=sync))
            self._notify(sync, time.monotonic())
        self._reread(reread)
        return deferred

    def _merged(self, stored: DeviceView | None, fresh: Fresh) -> Merged:
        device_id = fresh.view.device_id
        last = self._last_read.get(device_id)
        self._last_read[device_id] = max(fresh.read_at_ms, last or 0)
        newest = last is None or fresh.read_at_ms >= last
        if fresh.expect is not None and stored == fresh.expect and newest:
            return Merged(adopt(stored, fresh.view))  # nothing folded since it was asked for
        return merge(stored, fresh.view, fresh.read_at_ms, last_read_ms=last)

    def _reread(self, devices: dict[str, DeviceView]) -> None:
        """Read these devices again, now that their stored views are committed."""
        for device_id, expect in devices.items():
            self.stats.rereads += 1
            if self._reader is None:
                _log.warning("mirror.read_unsettled", device_id=device_id)
                continue
            _log.info("mirror.read_contradicts_events", device_id=device_id)
            self._refresh.put_nowait((device_id, expect))

    def notify(self, devices: Iterable[str]) -> None:
        """Tell the workers these devices have queued syncs (for writers outside the ingest)."""
        self._notify(devices, time.monotonic())

    def _notify(self, devices: Iterable[str], at: float) -> None:
        if self._on_commit is not None:
            pending = dict.fromkeys(devices, at)
            if pending:
                self._on_commit(pending)


def _raw(delivery: Delivery) -> dict[str, str]:
    """The message as received, kept readable for an operator."""
    with contextlib.suppress(UnicodeDecodeError):
        return {"topic": delivery.topic, "payload": delivery.payload.decode()}
    return {"topic": delivery.topic, "payload_base64": base64.b64encode(delivery.payload).decode()}
