"""The store's mirror bookkeeping: views, coalesced syncs, groups, memberships, finish."""

from bridge.core.machine import Event, State
from bridge.core.store import ChangeSet
from bridge.core.store.base import SYNC
from bridge.core.view import DeviceView, ShadowView


def _view(name, *groups, version=1):
    return DeviceView(
        name,
        thing_version=version,
        thing_type="sensor",
        attributes={"a": "1"},
        groups=frozenset(groups),
        shadows={"": ShadowView(3, {"on": True}, {"temp": 21})},
    )


async def test_views_round_trip_and_new_devices_start_discovered(store):
    await store.save_changes(ChangeSet(views=[_view("d1", "g1"), _view("d2")]))
    views = await store.get_views(["d1", "d2", "unknown"])
    assert views == {"d1": _view("d1", "g1"), "d2": _view("d2")}
    device = await store.get_device("d1")
    assert device.state is State.DISCOVERED
    assert device.fingerprint is None
    assert [v.device_id for v in await store.views_after("d1", 10)] == ["d2"]


async def test_pending_syncs_coalesce_to_one_message_per_device(store):
    for _ in range(3):
        await store.save_changes(ChangeSet(views=[_view("d1")], sync={"d1"}))
    assert await store.outbox_size() == 1
    [item] = await store.claim("w", 10, 30)
    assert item.kind == SYNC
    # While one is in flight, a new change queues exactly one more behind it.
    await store.save_changes(ChangeSet(views=[_view("d1", version=2)], sync={"d1"}))
    await store.save_changes(ChangeSet(sync={"d1"}))
    assert await store.outbox_size() == 2
    assert await store.claim("w", 10, 30) == []  # per-device order: behind the claimed one


async def test_changed_moves_mirrored_devices_to_syncing_and_finish_brings_them_back(store):
    await store.save_changes(ChangeSet(views=[_view("d1")], sync={"d1"}))
    [item] = await store.claim("w", 10, 30)
    state = await store.finish(item, [Event.PROVISION, Event.PROVISIONED], fingerprint="f1")
    assert state is State.MIRRORED
    assert (await store.get_device("d1")).fingerprint == "f1"
    assert await store.outbox_size() == 0

    await store.save_changes(ChangeSet(views=[_view("d1", version=2)], sync={"d1"}))
    assert (await store.get_device("d1")).state is State.SYNCING
    [item] = await store.claim("w", 10, 30)
    assert await store.finish(item, [Event.SYNCED], fingerprint="f2") is State.MIRRORED


async def test_force_forgets_the_fingerprint(store):
    await store.save_changes(ChangeSet(views=[_view("d1")], sync={"d1"}))
    [item] = await store.claim("w", 10, 30)
    await store.finish(item, [Event.PROVISION, Event.PROVISIONED], fingerprint="f1")
    await store.save_changes(ChangeSet(sync={"d1"}, force={"d1"}))
    assert (await store.get_device("d1")).fingerprint is None


async def test_finish_with_a_failure_keeps_the_reason(store):
    await store.save_changes(ChangeSet(views=[_view("d1")], sync={"d1"}))
    [item] = await store.claim("w", 10, 30)
    state = await store.finish(item, [Event.FAIL], fingerprint=None, reason="twin too large")
    assert state is State.FAILED
    assert (await store.problems(10))[0].reason == "twin too large"


async def test_groups_memberships_and_dead_letters(store):
    await store.save_changes(
        ChangeSet(
            views=[_view("d1", "site-a"), _view("d2", "site-a", "site-b"), _view("d3")],
            groups={"world": None, "site-a": "world", "site-b": "world"},
            dead_letters=[("aws", "payload is not JSON", {"topic": "t", "payload": "x"})],
        )
    )
    assert await store.group_parents() == {"world": None, "site-a": "world", "site-b": "world"}
    assert await store.members(["site-a"]) == ["d1", "d2"]
    assert await store.members(["site-b", "nothing"]) == ["d2"]
    # Saving a view replaces its memberships; deleted things are members of nothing.
    gone = DeviceView("d2", exists=False, thing_version=2, groups=frozenset({"site-a"}))
    await store.save_changes(ChangeSet(views=[gone], deleted_groups=["site-b"]))
    assert await store.members(["site-a", "site-b"]) == ["d1"]
    assert "site-b" not in await store.group_parents()
    [letter] = await store.dead_letters(10)
    assert (letter.source, letter.reason) == ("aws", "payload is not JSON")
