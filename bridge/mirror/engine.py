"""The mirror engine: ingest, workers and anti-entropy, wired together.

    source --deliveries--> Ingest --views + SYNC messages--> store --claims--> Mirror --> target
    reader --fresh reads--^  (initial seed, re-reads, anti-entropy)

The engine knows nothing of AWS or Azure: it is given a `Source`, a `SourceReader` and a
`Target` (see `bridge.core.ports`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Mapping
from dataclasses import dataclass

from bridge.core.groups import group_paths
from bridge.core.ports import BulkProvisioner, DeletePolicy, Importer, Source, SourceReader, Target
from bridge.core.store import SEEDED, ChangeSet, Store
from bridge.core.view import DeviceView
from bridge.logging import get_logger
from bridge.mirror.ingest import Fresh, Ingest
from bridge.mirror.reconcile import DriftReport, confirm_vanished, reconcile
from bridge.mirror.workers import Mirror

__all__ = ["Engine", "EngineOptions"]

_log = get_logger("mirror.engine")
_SEED_CHUNK = 5000  # devices folded (and imported) at a time during the initial sync


@dataclass(frozen=True)
class EngineOptions:
    """How hard and how often the engine works."""

    owner: str = "bridge"
    delete_policy: DeletePolicy = DeletePolicy.DELETE
    concurrency: int = 32
    reconcile_every: float | None = 900.0  # seconds between anti-entropy passes; None: never
    batch_size: int = 500
    retry_base: float = 0.5  # seconds before the first retry of a failed write; doubles
    import_threshold: int | None = 1000  # new devices in a seed chunk worth an import job
    drain_seconds: float = 10.0  # at shutdown, how long writes in flight may finish
    lease_seconds: float = 15.0  # claims renewed while alive; a dead replica's free after this
    write_timeout: float = 120.0  # one device's write (or one bulk call) at most; then retried


class Engine:
    """Runs the mirror until cancelled; `seed` and `settle` serve the initial sync and tests."""

    def __init__(
        self,
        store: Store,
        target: Target,
        *,
        source: Source | None = None,
        reader: SourceReader | None = None,
        options: EngineOptions | None = None,
    ) -> None:
        self.options = options or EngineOptions()
        self._store = store
        self._source = source
        self._reader = reader
        self._target = target
        self.mirror = Mirror(
            store,
            target,
            lambda: self.ingest.parents,
            owner=self.options.owner,
            delete_policy=self.options.delete_policy,
            concurrency=self.options.concurrency,
            retry_base=self.options.retry_base,
            bulk=target.provision if isinstance(target, BulkProvisioner) else None,
            drain_seconds=self.options.drain_seconds,
            lease_seconds=self.options.lease_seconds,
            write_timeout=self.options.write_timeout,
        )
        self.ingest = Ingest(
            store,
            reader=reader,
            on_commit=self.mirror.changed,
            batch_size=self.options.batch_size,
        )
        self.last_reconcile: DriftReport | None = None
        self.target_drift = 0  # twins repaired by anti-entropy since start
        self._loaded = False

    async def load(self) -> None:
        """Read what the store remembers (the group hierarchy); idempotent."""
        if not self._loaded:
            await self.ingest.load()
            self._loaded = True

    async def run(self) -> None:
        """Ingest, mirror and reconcile until cancelled; drains writes in flight on the way out."""
        await self.load()
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self.ingest.run(self._source), name="ingest")
            tasks.create_task(self.mirror.run(), name="mirror")
            if self._reader is not None and self.options.reconcile_every:
                tasks.create_task(self._reconcile_loop(self.options.reconcile_every))

    async def seed(
        self,
        views: AsyncIterable[DeviceView] | Iterable[DeviceView],
        parents: Mapping[str, str | None],
    ) -> int:
        """Fold a full read of the source in (the initial sync); return how many devices.

        Run it while `run` is live: events arriving meanwhile are folded too, and versions
        decide which wins, so switching from initial sync to live mode leaves no gap. Large
        batches of devices new to the store are created with one import job each when the
        target can (see `EngineOptions.import_threshold`); the workers do the rest.
        """
        await self.load()
        read_at = int(time.time() * 1000)
        await self.ingest.submit_groups(dict(parents))
        count = 0
        seen: set[str] = set()
        chunk: list[Fresh] = []
        async for view in _each(views):
            chunk.append(Fresh(view, read_at))
            seen.add(view.device_id)
            count += 1
            if len(chunk) >= _SEED_CHUNK:
                await self._seed_chunk(chunk)
                chunk = []
        if chunk:
            await self._seed_chunk(chunk)
        if self._reader is not None:
            # A store from an earlier, interrupted run may know things that are gone now,
            # deleted while no session was there to hear it: check each the read missed.
            report = DriftReport()
            await confirm_vanished(self._store, self._reader, self.ingest, seen, report)
            await self.ingest.flush()
            if report.vanished:
                _log.info("mirror.vanished_since_last_run", devices=report.vanished)
        await self._store.set_checkpoint(SEEDED, str(read_at))
        _log.info("mirror.initial_read_folded", devices=count)
        return count

    async def _seed_chunk(self, chunk: list[Fresh]) -> None:
        threshold = self.options.import_threshold
        target = self._target
        if not isinstance(target, Importer) or threshold is None or len(chunk) < threshold:
            await self.ingest.fold(chunk)
            return
        new = await self.ingest.fold(chunk, defer_new=True)
        if not new:
            return
        parents = self.ingest.parents
        started = time.monotonic()
        try:
            results = await target.import_devices(
                [(v, group_paths(v.groups, parents)) for v in new]
            )
        except Exception as exc:  # the workers create them one by one instead
            _log.warning("mirror.import_job_failed", error=str(exc))
            results = {}
        written = {device_id: fp for device_id, fp in results.items() if isinstance(fp, str)}
        moved = await self._store.mark_provisioned(written)
        _log.info(
            "mirror.import_job_done",
            devices=len(new),
            created=moved,
            seconds=round(time.monotonic() - started, 1),
        )
        # Every new device still gets a SYNC: it repairs what changed during the job and
        # creates what the job could not; an unchanged fingerprint costs no write.
        ids = {view.device_id for view in new}
        await self._store.save_changes(ChangeSet(sync=ids))
        self.ingest.notify(ids)

    async def seeded(self) -> bool:
        """True once an initial sync has been folded in (a restart does not repeat it)."""
        return await self._store.get_checkpoint(SEEDED) is not None

    async def reconcile(self) -> DriftReport:
        """One anti-entropy pass now."""
        if self._reader is None:
            msg = "anti-entropy needs a source reader"
            raise RuntimeError(msg)
        await self.load()
        report = await reconcile(self._store, self._reader, self._target, self.ingest)
        # Missing devices that were never written are queued work, not drift.
        missing_written = report.target_missing - report.target_missing_unwritten
        self.target_drift += report.target_drift + missing_written
        self.last_reconcile = report
        return report

    async def settle(self, timeout: float = 60.0) -> None:
        """Wait until everything received so far has been applied (tests and rehearsals)."""
        async with asyncio.timeout(timeout):
            await self.ingest.flush()
            while await self._store.outbox_size() or self.mirror.busy:  # noqa: ASYNC110 - state is in the store
                await asyncio.sleep(0.02)

    async def reconcile_logged(self) -> None:
        """One pass whose failure is logged, not raised: the mirror keeps going regardless."""
        try:
            await self.reconcile()
        except Exception as exc:  # the next pass tries again
            _log.exception("mirror.reconcile_failed", error=str(exc))

    async def _reconcile_loop(self, every: float) -> None:
        while True:
            await asyncio.sleep(every)
            await self.reconcile_logged()


async def _each(
    views: AsyncIterable[DeviceView] | Iterable[DeviceView],
) -> AsyncIterator[DeviceView]:
    if isinstance(views, AsyncIterable):
        async for view in views:
            yield view
    else:
        for view in views:
            yield view
