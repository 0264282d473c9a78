"""Sync marks (what each direction of the reverse path carried) and fingerprint swaps."""

from bridge.core.store import SyncMark


async def test_a_mark_only_moves_forward(store):
    assert await store.sync_mark("d1", "twin_reported") is None
    assert await store.set_sync_mark(SyncMark("d1", "twin_reported", "", 4, "a"))
    assert not await store.set_sync_mark(SyncMark("d1", "twin_reported", "", 4, "b"))
    assert not await store.set_sync_mark(SyncMark("d1", "twin_reported", "", 3, "c"))
    assert await store.sync_mark("d1", "twin_reported") == SyncMark(
        "d1", "twin_reported", "", 4, "a"
    )
    assert await store.set_sync_mark(SyncMark("d1", "twin_reported", "", 5, None))
    assert (await store.sync_mark("d1", "twin_reported")).version == 5
    # Directions and names are kept apart.
    assert await store.set_sync_mark(SyncMark("d1", "shadow_desired", "cfg", 1))
    assert await store.sync_mark("d1", "shadow_desired") is None
    assert (await store.sync_mark("d1", "shadow_desired", "cfg")).version == 1


async def test_a_fingerprint_is_replaced_only_while_it_is_the_expected_one(store):
    await store.add_device("d1")
    assert await store.replace_fingerprint("d1", None, "one.x")
    assert not await store.replace_fingerprint("d1", None, "two.x")
    assert await store.replace_fingerprint("d1", "one.x", "two.x")
    assert (await store.get_device("d1")).fingerprint == "two.x"
    assert not await store.replace_fingerprint("nobody", None, "x")
