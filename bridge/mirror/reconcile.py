"""Anti-entropy: compare source, store and target, and repair whatever drifted.

MQTT events can be missed (a broker restart, a session that expired), duplicated or
reordered, and someone can edit a twin by hand. A pass reads the whole source, folds each
device in like any other change (versions decide, so it never undoes a newer event), then
compares what the target holds with what it should hold and queues a forced write for
every difference. Drift found is counted and logged per device. A stored view newer than
the last write with no SYNC queued (a lost SYNC) is queued too: neither comparison above
would ever find it, since the target matches the last write and the source the view.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

from bridge.core.groups import group_paths
from bridge.core.ports import SourceReader, Target
from bridge.core.store import ChangeSet, Store
from bridge.core.view import DeviceView
from bridge.logging import get_logger
from bridge.mirror.ingest import Fresh, Ingest

__all__ = ["DriftReport", "confirm_vanished", "reconcile"]

_log = get_logger("mirror.reconcile")
_PAGE = 1000


@dataclass
class DriftReport:
    """What one pass found."""

    source_devices: int = 0
    source_drift: int = 0  # stored views the source read changed
    vanished: int = 0  # things gone from the source without a delete event
    target_drift: int = 0  # twins that differed from what they should hold
    target_missing: int = 0  # devices that exist on the source and not on the target
    target_missing_unwritten: int = 0  # of those, never written yet (still queued)
    target_unknown: int = 0  # target devices the bridge does not manage
    unsynced: int = 0  # stored views newer than the last write, with no write queued
    reread: int = 0  # devices whose read contradicted events folded meanwhile: read again
    seconds: float = 0.0


async def reconcile(
    store: Store, reader: SourceReader, target: Target, ingest: Ingest
) -> DriftReport:
    """Run one full anti-entropy pass and return what it found and repaired."""
    started = time.monotonic()
    report = DriftReport()
    read_at = int(time.time() * 1000)
    drift_before, rereads_before = ingest.stats.drift, ingest.stats.rereads
    # The target first: what the source pass queues would otherwise look like drift.
    await _compare_target(store, target, ingest, report)
    await ingest.submit_groups(await reader.read_groups())
    seen: set[str] = set()
    async for view in reader.snapshot():
        seen.add(view.device_id)
        await ingest.submit(Fresh(view, read_at, drift_check=True))
    report.source_devices = len(seen)
    await confirm_vanished(store, reader, ingest, seen, report)
    await ingest.flush()
    report.source_drift = ingest.stats.drift - drift_before
    report.reread = ingest.stats.rereads - rereads_before
    report.seconds = round(time.monotonic() - started, 3)
    _log.info("mirror.reconcile_done", **vars(report))
    return report


async def confirm_vanished(
    store: Store, reader: SourceReader, ingest: Ingest, seen: set[str], report: DriftReport
) -> None:
    """Stored things the listing missed: read each one, since it may be brand new."""
    after = ""
    while page := await store.views_after(after, _PAGE):
        after = page[-1].device_id
        for view in page:
            if not view.exists or view.device_id in seen:
                continue
            read_at = int(time.time() * 1000)
            fresh = await reader.read_device(view.device_id)
            if fresh is None:
                report.vanished += 1
                _log.info("mirror.thing_vanished", device_id=view.device_id)
                fresh = DeviceView(view.device_id, exists=False, thing_version=view.thing_version)
            # Read after the stored view was: taken whole if nothing changed it meanwhile.
            await ingest.submit(Fresh(fresh, read_at, drift_check=True, expect=view))


async def _compare_target(
    store: Store, target: Target, ingest: Ingest, report: DriftReport
) -> None:
    """Compare the target with what it should hold: every device that exists on the source.

    A twin that differs from the bridge's last write was changed behind its back. Comparing
    with the last write, not with the newest view, keeps changes that are merely queued
    from counting as drift. A device the target lacks is missing whether or not the bridge
    ever wrote it: after an unclean stop, queued creates are exactly what the hub lacks.
    """
    written: dict[str, str] = {}
    after = ""
    while page := await store.fingerprints_after(after, _PAGE):
        after = page[-1][0]
        written.update(page)
    expected, stale = await _stored(store, target, written, ingest.parents)
    drifted: set[str] = set()
    async for device_id, fingerprint in target.observed():
        if device_id not in expected:
            report.target_unknown += 1
            continue
        expected.discard(device_id)
        wanted = written.get(device_id)
        if wanted is not None and not target.same(wanted, fingerprint):
            drifted.add(device_id)
            _log.info("mirror.target_drift", device_id=device_id)
    missing = expected  # what is left was not on the target
    report.target_drift = len(drifted)
    report.target_missing = len(missing)
    report.target_missing_unwritten = len(missing - written.keys())
    for device_id in missing & written.keys():
        _log.info("mirror.target_missing", device_id=device_id)
    repair = drifted | missing
    # Usually a write already queued (one pending SYNC per device, so queuing again is
    # free); a lost one is written now. Either way not drift: the target is as written.
    unsynced = stale - repair - await store.queued(stale - repair)
    report.unsynced = len(unsynced)
    for device_id in sorted(unsynced):
        _log.warning("mirror.unsynced_view", device_id=device_id)
    if repair or unsynced:
        await store.save_changes(ChangeSet(sync=repair | unsynced, force=repair))
        ingest.notify(repair | unsynced)


async def _stored(
    store: Store, target: Target, written: dict[str, str], parents: Mapping[str, str | None]
) -> tuple[set[str], set[str]]:
    """Every device that exists on the source, and those whose last write is not their
    stored view's (a write queued, or lost)."""
    expected: set[str] = set()
    stale: set[str] = set()
    after = ""
    while views := await store.views_after(after, _PAGE):
        after = views[-1].device_id
        for view in views:
            if not view.exists:
                continue
            expected.add(view.device_id)
            wanted = written.get(view.device_id)
            paths = group_paths(view.groups, parents)
            if wanted is not None and wanted != target.fingerprint(view, paths):
                stale.add(view.device_id)
    return expected, stale
