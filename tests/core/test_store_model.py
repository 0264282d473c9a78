import asyncio
import uuid

import asyncpg
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    invariant,
    rule,
    run_state_machine_as_test,
)

from bridge.core.machine import TRANSITIONS, Event, State
from bridge.core.store import open_store
from bridge.errors import InvalidTransition, StoreError

DEVICES = st.sampled_from(["a", "b", "c"])


async def _execute(dsn, sql):
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def fresh_dsn(base_dsn, tmp_path, schemas):
    """A new empty store for every Hypothesis example."""
    if base_dsn.startswith("sqlite"):
        return f"sqlite:///{tmp_path / uuid.uuid4().hex}.db"
    database = base_dsn.partition("?")[0]
    schemas.append(f"model_{uuid.uuid4().hex[:12]}")
    asyncio.run(_execute(database, f"CREATE SCHEMA {schemas[-1]}"))
    return f"{database}?search_path={schemas[-1]}"


class StoreAgainstModel(RuleBasedStateMachine):
    """Random operations on a real store, checked against a dictionary model."""

    claimed = Bundle("claimed")

    def __init__(self, dsn):
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.context = open_store(dsn)
        self.store = self.run(self.context.__aenter__())
        self.states: dict[str, State] = {}
        self.queues: dict[str, list[int]] = {}  # device -> pending payload numbers, in order
        self.in_flight: dict[str, int] = {}  # device -> outbox id claimed
        self.sequence = 0

    def run(self, awaitable):
        return self.loop.run_until_complete(awaitable)

    def teardown(self):
        self.run(self.context.__aexit__(None, None, None))
        self.loop.close()

    @rule(device=DEVICES)
    def add_device(self, device):
        assert self.run(self.store.add_device(device)) is (device not in self.states)
        self.states.setdefault(device, State.DISCOVERED)

    @rule(device=DEVICES, event=st.sampled_from(Event))
    def transition(self, device, event):
        try:
            after = self.run(self.store.transition(device, event))
        except StoreError:
            assert device not in self.states
        except InvalidTransition:
            assert event not in TRANSITIONS[self.states[device]]
        else:
            assert after is TRANSITIONS[self.states[device]][event]
            self.states[device] = after

    @rule(device=DEVICES)
    def enqueue(self, device):
        self.sequence += 1
        self.run(self.store.enqueue(device, "k", {"n": self.sequence}))
        self.queues.setdefault(device, []).append(self.sequence)

    @rule(target=claimed, limit=st.integers(1, 3))
    def claim(self, limit):
        items = self.run(self.store.claim("w", limit, 60))
        ready = [d for d, queue in self.queues.items() if queue and d not in self.in_flight]
        assert len(items) == min(limit, len(ready))
        for item in items:
            assert item.device_id not in self.in_flight
            assert item.payload["n"] == self.queues[item.device_id][0]
            self.in_flight[item.device_id] = item.id
        return items

    @rule(items=claimed)
    def ack(self, items):
        live = [i for i in items if self.in_flight.get(i.device_id) == i.id]
        self.run(self.store.ack([i.id for i in live]))
        for item in live:
            del self.in_flight[item.device_id]
            self.queues[item.device_id].pop(0)

    @rule(items=claimed)
    def retry(self, items):
        for item in items:
            if self.in_flight.get(item.device_id) == item.id:
                self.run(self.store.retry(item.id, 0, "try again"))
                del self.in_flight[item.device_id]

    @invariant()
    def counts_and_sizes_match(self):
        counts = self.run(self.store.counts_by_state())
        assert {s: n for s, n in counts.items() if n} == {
            s: sum(1 for v in self.states.values() if v is s) for s in set(self.states.values())
        }
        assert self.run(self.store.outbox_size()) == sum(map(len, self.queues.values()))


def test_store_matches_its_model(store_dsn, tmp_path):
    schemas: list[str] = []
    try:
        run_state_machine_as_test(
            lambda: StoreAgainstModel(fresh_dsn(store_dsn, tmp_path, schemas)),
            settings=settings(max_examples=15, stateful_step_count=25, deadline=None),
        )
    finally:
        database = store_dsn.partition("?")[0]
        for schema in schemas:
            asyncio.run(_execute(database, f"DROP SCHEMA {schema} CASCADE"))
