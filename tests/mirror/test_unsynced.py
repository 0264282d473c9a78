"""Anti-entropy writes a stored view that never reached the target, not only drift.

A view can be newer than the last write with no SYNC queued for it: a change coalesced
into a SYNC that a worker had already read the old view for (the PostgreSQL race fixed in
the store, tests/core/test_store_coalescing.py), or any other lost SYNC. The target then
matches the last write, so comparing it with the last write finds nothing, and the source
matches the stored view, so folding the source changes nothing: before this, no pass
would ever write that view (issue 10: a live-created thing left without its attributes).
"""

from bridge.core.store import ChangeSet
from bridge.core.view import DeviceView
from tests.core.fakes import MemoryReader, MemoryTarget
from tests.mirror.test_engine import running, settle


async def test_a_view_left_unwritten_is_written_by_the_next_pass(store):
    views = {f"d{i}": DeviceView(f"d{i}", thing_version=1) for i in range(3)}
    reader, target = MemoryReader(views, {}), MemoryTarget()
    async with running(store, target, reader=reader) as engine:
        await engine.seed(views.values(), {})
        await settle(engine)
        born = DeviceView("d1", thing_version=2, attributes={"born": "live"})
        reader.views["d1"] = born
        await store.save_changes(ChangeSet(views=[born]))  # stored, its SYNC lost
        assert await store.outbox_size() == 0
        report = await engine.reconcile()
        await settle(engine)
        assert target.twins["d1"]["attributes"] == {"born": "live"}
        assert (report.unsynced, report.target_drift, report.source_drift) == (1, 0, 0)
        again = await engine.reconcile()
        assert again.unsynced == 0
