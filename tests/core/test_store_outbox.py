import asyncio
import random
from collections import defaultdict

from bridge.core.store import open_store


async def test_claim_gives_each_device_its_oldest_message_only(store):
    first = await store.enqueue("d1", "k", {"n": 1})
    await store.enqueue("d1", "k", {"n": 2})
    other = await store.enqueue("d2", "k", {"n": 1})
    claimed = await store.claim("w1", 10, 30)
    assert [(i.id, i.device_id, i.attempts) for i in claimed] == [
        (first, "d1", 1),
        (other, "d2", 1),
    ]
    assert await store.claim("w2", 10, 30) == []  # d1's second waits for its first
    await store.ack([first])
    assert [i.payload for i in await store.claim("w2", 10, 30)] == [{"n": 2}]
    assert await store.outbox_size() == 2


async def test_expired_claims_are_delivered_again(store):
    item_id = await store.enqueue("d1", "k", {"n": 1})
    assert [i.id for i in await store.claim("crashed", 10, 0.3)] == [item_id]
    assert await store.claim("w2", 10, 30) == []
    await asyncio.sleep(0.4)
    (again,) = await store.claim("w2", 10, 30)
    assert (again.id, again.attempts) == (item_id, 2)


async def test_retry_delays_the_device_and_counts_attempts(store):
    first = await store.enqueue("d1", "k", {"n": 1})
    await store.enqueue("d1", "k", {"n": 2})
    (item,) = await store.claim("w", 10, 30)
    await store.retry(item.id, 0.3, "429 throttled")
    assert await store.claim("w", 10, 30) == []  # the retried head still blocks its device
    await asyncio.sleep(0.4)
    (again,) = await store.claim("w", 10, 30)
    assert (again.id, again.attempts, again.last_error) == (first, 2, "429 throttled")


async def test_parallel_replicas_keep_per_device_order_and_deliver_exactly_once(store_dsn):
    devices = [f"d{n}" for n in range(8)]
    expected = {device: list(range(15)) for device in devices}
    in_flight: set[str] = set()
    delivered: dict[str, list[int]] = defaultdict(list)
    overlaps: list[str] = []

    async def replica(store, owner):
        idle = 0
        while idle < 5:
            batch = await store.claim(owner, 3, 30)
            idle = 0 if batch else idle + 1
            for item in batch:
                if item.device_id in in_flight:
                    overlaps.append(item.device_id)
                in_flight.add(item.device_id)
            await asyncio.sleep(random.random() / 200)
            for item in batch:
                delivered[item.device_id].append(item.payload["seq"])
                # Leave the in-flight set before the ack commits: only then may a claim
                # legitimately hand out the device's next message.
                in_flight.discard(item.device_id)
            await store.ack([item.id for item in batch])
            await asyncio.sleep(0)

    async with open_store(store_dsn) as one, open_store(store_dsn) as two:

        async def produce(store, device):
            for seq in range(15):
                await store.enqueue(device, "k", {"seq": seq})

        await asyncio.gather(*(produce(random.choice((one, two)), d) for d in devices))
        await asyncio.gather(replica(one, "a"), replica(two, "b"), replica(one, "c"))
        assert await one.outbox_size() == 0
    assert overlaps == []
    assert dict(delivered) == expected


async def test_dead_letters_are_kept_newest_first(store):
    await store.dead_letter("aws", "malformed shadow", {"raw": "{"})
    second = await store.dead_letter("outbox", "gave up after 10 attempts", {"n": 1})
    letters = await store.dead_letters(10)
    assert (letters[0].id, letters[0].source, letters[0].payload) == (second, "outbox", {"n": 1})
    assert [d.reason for d in letters] == ["gave up after 10 attempts", "malformed shadow"]
    assert len(await store.dead_letters(1)) == 1


async def test_checkpoints_round_trip(store):
    assert await store.get_checkpoint("reconcile") is None
    await store.set_checkpoint("reconcile", "token-1")
    await store.set_checkpoint("reconcile", "token-2")
    assert await store.get_checkpoint("reconcile") == "token-2"


async def test_partition_leases(store):
    assert await store.acquire_lease("p0", "a", 30) is True
    assert await store.acquire_lease("p0", "b", 30) is False
    assert await store.acquire_lease("p0", "a", 30) is True  # ours: extended
    assert await store.renew_lease("p0", "a", 30) is True
    assert await store.renew_lease("p0", "b", 30) is False
    await store.release_lease("p0", "b")  # not b's: no effect
    assert await store.acquire_lease("p0", "b", 30) is False
    await store.release_lease("p0", "a")
    assert await store.acquire_lease("p0", "b", 0.2) is True
    await asyncio.sleep(0.3)
    assert await store.renew_lease("p0", "b", 30) is False  # expired
    assert await store.acquire_lease("p0", "a", 30) is True


async def test_a_restart_takes_its_own_claims_back_and_leaves_others(store):
    mine = await store.enqueue("d1", "k", {"n": 1})
    theirs = await store.enqueue("d2", "k", {"n": 1})
    await store.claim("replica-a", 1, 300)
    await store.claim("replica-b", 1, 300)
    assert await store.release_claims("replica-a") == 1
    assert [i.id for i in await store.claim("replica-a", 10, 300)] == [mine]
    assert await store.release_claims("nobody") == 0
    assert theirs not in [i.id for i in await store.claim("replica-c", 10, 300)]


async def test_renewed_claims_outlive_their_lease_and_unrenewed_ones_expire(store):
    live = await store.enqueue("d1", "k", {"n": 1})
    dead = await store.enqueue("d2", "k", {"n": 1})
    await store.claim("live", 1, 0.5)
    await store.claim("dead", 1, 0.5)
    for _ in range(4):  # well past the 0.5 s lease, renewed as a heartbeat would
        await asyncio.sleep(0.25)
        assert await store.renew_claims("live", 0.5) == 1
    taken = [i.id for i in await store.claim("other", 10, 30)]
    assert taken == [dead]
    assert live not in taken
