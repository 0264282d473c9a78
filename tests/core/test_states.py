"""StateCache: lookups that miss together cost one store read, and a change shows up once
the cached state expires."""

import asyncio

import pytest

from bridge.core.machine import Event, State
from bridge.core.states import StateCache
from bridge.core.store import ChangeSet, open_store
from bridge.core.view import DeviceView
from bridge.errors import StoreError


@pytest.fixture
async def store(tmp_path):
    async with open_store(f"sqlite:///{tmp_path / 'store.db'}") as opened:
        for name in ("a", "b", "c"):
            await opened.add_device(name)
        await opened.transition("b", Event.PROVISION)
        yield opened


async def test_misses_in_one_turn_share_one_read_and_unknown_devices_are_none(store):
    cache = StateCache(store, ttl=60)
    found = await asyncio.gather(*(cache.get(d) for d in ["a", "b", "c", "ghost", "a"]))
    assert found == [State.DISCOVERED, State.PROVISIONING, State.DISCOVERED, None, State.DISCOVERED]
    assert cache.reads == 1
    await cache.get("b")
    assert cache.reads == 1  # cached


async def test_a_change_is_seen_once_the_cached_state_expires(store):
    now = [0.0]
    cache = StateCache(store, ttl=1.0, clock=lambda: now[0])
    assert await cache.get("a") is State.DISCOVERED
    await store.transition("a", Event.PROVISION)
    assert await cache.get("a") is State.DISCOVERED  # still cached
    now[0] = 1.5
    assert await cache.get("a") is State.PROVISIONING


async def test_a_failed_read_reaches_every_waiter_and_the_next_lookup_reads_again(
    store, monkeypatch
):
    cache = StateCache(store, ttl=60)
    real = store.get_devices

    async def broken(_ids):
        raise StoreError("store unreachable")

    monkeypatch.setattr(store, "get_devices", broken)
    found = await asyncio.gather(cache.get("a"), cache.get("b"), return_exceptions=True)
    assert all(isinstance(f, StoreError) for f in found)
    monkeypatch.setattr(store, "get_devices", real)
    assert await cache.get("a") is State.DISCOVERED


async def test_a_cancelled_lookup_does_not_cancel_the_read_others_wait_for(store):
    cache = StateCache(store, ttl=60)
    first = asyncio.create_task(cache.get("a"))
    second = asyncio.create_task(cache.get("a"))
    await asyncio.sleep(0)
    first.cancel()
    assert await second is State.DISCOVERED


async def test_thing_types_come_with_the_state_in_the_same_batch(store):
    await store.save_changes(
        ChangeSet(views=[DeviceView("typed", thing_type="sensor"), DeviceView("plain")])
    )
    cache = StateCache(store, ttl=60, thing_types=True)
    found = await asyncio.gather(*(cache.facts(d) for d in ["typed", "plain", "a", "ghost"]))
    assert found == [
        (State.DISCOVERED, "sensor"),
        (State.DISCOVERED, None),
        (State.DISCOVERED, None),  # known, no view yet
        (None, None),
    ]
    assert cache.reads == 1
    assert await StateCache(store, ttl=60).facts("typed") == (State.DISCOVERED, None)
