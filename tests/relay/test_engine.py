"""The relay engine against a real SQLite store and a sender that records (or fails)."""

import asyncio
import contextlib
import time

import pytest

from bridge.azure.budget import RateBudget
from bridge.core.machine import Event
from bridge.core.milestones import record_cut_over
from bridge.core.ports import Delivery
from bridge.core.store import open_store
from bridge.errors import Rejected, StoreError
from bridge.mapping.telemetry import FROM_AZURE, ORIGIN_PROPERTY, parse_route
from bridge.metrics import Metrics
from bridge.relay.engine import DailyQuota, EngineOptions, RelayEngine

ROUTES = [parse_route("dt/+=2")]


class Recorder:
    """A sender that records sends, can be held, and fails the first `fail` sends."""

    def __init__(self, fail=0, error=ConnectionError):
        self.sent = []
        self.fail = fail
        self.error = error
        self.gate = asyncio.Event()
        self.gate.set()
        self.busy = {}
        self.overlap = False

    async def send(self, device_id, body, **fields):
        if self.busy.get(device_id):
            self.overlap = True  # two sends of one device at once would break its order
        self.busy[device_id] = True
        try:
            await self.gate.wait()
            if self.fail:
                self.fail -= 1
                raise self.error("dropped")
            self.sent.append((device_id, body, fields))
        finally:
            self.busy[device_id] = False


class Feed:
    """Deliveries that record their acks, fed to the engine through a queue."""

    def __init__(self):
        self.queue = asyncio.Queue()
        self.acked = []

    def publish(self, topic, payload, properties=None, age=0.0):
        delivery = Delivery(
            topic,
            payload,
            None,
            None,
            lambda: self.acked.append((topic, payload)),
            time.monotonic() - age,  # `age` seconds ago it reached the bridge
            properties or {},
        )
        self.queue.put_nowait(delivery)

    async def __aiter__(self):
        while (item := await self.queue.get()) is not None:
            yield item


async def until(condition, timeout=5.0):
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def running(tmp_path, sender, *, devices=("a", "b"), in_flight=100, state=Event.PROVISIONED):
    metrics = Metrics.create()
    async with open_store(f"sqlite:///{tmp_path / 'relay.db'}") as store:
        for device in devices:
            await store.add_device(device)
            await store.transition(device, Event.PROVISION)
            if state is not None:
                await store.transition(device, state)
        engine = RelayEngine(
            ROUTES,
            store,
            sender,
            budget=RateBudget.unlimited(),
            metrics=metrics,
            quota=DailyQuota(1000, metrics, 0.8),
            options=EngineOptions(
                in_flight=in_flight, state_ttl=0, drain_seconds=2, backoff=(0.001, 0.01)
            ),
        )
        feed = Feed()
        task = asyncio.create_task(engine.run(feed))
        try:
            yield feed, engine, store, metrics
        finally:
            engine.stop()
            await task


def value(metrics, name, **labels):
    return metrics.registry.get_sample_value(name, labels) or 0


async def test_every_device_keeps_its_order_and_acks_follow_the_send(tmp_path):
    sender = Recorder()
    async with running(tmp_path, sender) as (feed, _engine, _store, metrics):
        for n in range(50):
            feed.publish(f"dt/{'ab'[n % 2]}", f'{{"n":{n}}}'.encode())
        await until(lambda: len(feed.acked) == 50)
    for device in "ab":
        bodies = [body for d, body, _ in sender.sent if d == device]
        assert bodies == [f'{{"n":{n}}}'.encode() for n in range(50) if "ab"[n % 2] == device]
    assert not sender.overlap
    assert value(metrics, "bridge_relay_messages_total", outcome="sent") == 50
    assert value(metrics, "bridge_relay_daily_quota_used_ratio") == 50 / 1000


async def test_nothing_is_acked_before_iot_hub_accepts_and_reading_stops_when_full(tmp_path):
    sender = Recorder()
    sender.gate.clear()  # IoT Hub does not answer
    async with running(tmp_path, sender, in_flight=3) as (feed, engine, _store, _metrics):
        for n in range(6):
            feed.publish("dt/a", str(n).encode())
        # Three in lanes, and the reader holds the fourth while it waits for a slot.
        await until(lambda: engine.in_flight == 3 and feed.queue.qsize() == 2)
        assert feed.acked == []
        assert engine.in_flight == 3  # bounded: of the other three, one waits for a slot
        assert feed.queue.qsize() == 2
        sender.gate.set()
        await until(lambda: len(feed.acked) == 6)
    assert [body for _, body, _ in sender.sent] == [str(n).encode() for n in range(6)]


async def test_an_outage_is_waited_out_in_order_and_loses_nothing(tmp_path):
    sender = Recorder(fail=30)  # dropped connections, timeouts, 5xx: may pass
    async with running(tmp_path, sender) as (feed, _engine, store, metrics):
        feed.publish("dt/a", b"1")
        feed.publish("dt/a", b"2")
        await until(lambda: len(feed.acked) == 2, timeout=10)
        assert await store.dead_letters(10) == []
    assert [body for _, body, _ in sender.sent] == [b"1", b"2"]
    assert value(metrics, "bridge_retries_total", side="azure", operation="d2cSend") == 30


async def test_a_message_iot_hub_keeps_refusing_is_dead_lettered(tmp_path):
    sender = Recorder(fail=5, error=Rejected)  # the module is gone
    async with running(tmp_path, sender) as (feed, _engine, store, metrics):
        feed.publish("dt/a", b"1")
        feed.publish("dt/a", b"2")
        await until(lambda: len(feed.acked) == 2)
        letters = await store.dead_letters(10)
    assert [(dl.reason, dl.payload["payload_base64"]) for dl in letters] == [("refused", "MQ==")]
    assert [body for _, body, _ in sender.sent] == [b"2"]
    assert value(metrics, "bridge_relay_dead_letters_total", reason="refused") == 1


async def test_unresolvable_unknown_and_oversized_messages_are_dead_lettered(tmp_path):
    sender = Recorder()
    async with running(tmp_path, sender) as (feed, _engine, store, metrics):
        feed.publish("dt/a/extra", b"x")  # does not match dt/+
        feed.publish("dt/", b"x")  # the device level is empty
        feed.publish("dt/stranger", b"x")  # not a device the bridge knows
        feed.publish("dt/a", b"x" * (256 * 1024))  # over IoT Hub's 256 KB with properties
        feed.publish("dt/a", b"ok")
        await until(lambda: len(feed.acked) == 5)
        letters = await store.dead_letters(10)
    assert sender.sent == [("a", b"ok", sender.sent[0][2])]
    assert sorted(letter.reason for letter in letters) == [
        "too_large",
        "unknown_device",
        "unresolved_device",
        "unresolved_device",
    ]
    assert all(letter.source == "relay" for letter in letters)
    assert value(metrics, "bridge_relay_dead_letters_total", reason="unresolved_device") == 2
    assert value(metrics, "bridge_relay_messages_total", outcome="dead_lettered") == 4


async def test_cut_over_devices_are_skipped_and_new_ones_wait_for_the_mirror(tmp_path):
    sender = Recorder()
    async with running(tmp_path, sender, devices=("a",), state=None) as (feed, engine, store, m):
        # "a" is PROVISIONING: its message waits, unacknowledged, until the mirror is done.
        feed.publish("dt/a", b"1")
        await until(lambda: engine.in_flight == 1)
        assert feed.acked == []
        await store.transition("a", Event.PROVISIONED)
        await until(lambda: len(feed.acked) == 1)
        for event in (Event.SCHEDULE_CUTOVER, Event.JOB_SENT, Event.AZURE_CONNECTED):
            await store.transition("a", event)
        feed.publish("dt/a", b"2")
        await until(lambda: len(feed.acked) == 2)
    assert [body for _, body, _ in sender.sent] == [b"1"]
    assert value(m, "bridge_relay_messages_total", outcome="skipped") == 1


async def test_a_broken_lane_fails_the_engine_instead_of_holding_messages_silently():
    class GoneStore:
        async def get_devices(self, _device_ids):
            raise StoreError("the database is gone")

    metrics = Metrics.create()
    engine = RelayEngine(
        ROUTES,
        GoneStore(),
        Recorder(),
        budget=RateBudget.unlimited(),
        metrics=metrics,
        quota=DailyQuota(None, metrics, 0.8),
        options=EngineOptions(state_ttl=0),
    )
    feed = Feed()
    feed.publish("dt/a", b"1")
    async with asyncio.timeout(5):
        with pytest.raises(StoreError, match="gone"):
            await engine.run(feed)
    assert feed.acked == []  # AWS sends it again to the next session


async def test_what_the_reverse_path_republished_is_never_carried_back(tmp_path):
    # Device "a" is still relayed as far as the store says (its cutover may be seconds old
    # and the state cached): a message marked as the reverse path's copy is skipped anyway.
    sender = Recorder()
    async with running(tmp_path, sender) as (feed, _engine, _store, metrics):
        feed.publish("dt/a", b'{"n": 1}', {ORIGIN_PROPERTY: FROM_AZURE})
        feed.publish("dt/a", b'{"n": 2}', {"other": "x"})
        await until(lambda: len(feed.acked) == 2)
        assert [body for _d, body, _f in sender.sent] == [b'{"n": 2}']
        assert value(metrics, "bridge_relay_messages_total", outcome="skipped") == 1


async def test_what_aws_delivered_before_the_device_moved_is_still_relayed(tmp_path):
    # The device published on AWS until it switched; those readings were still in the relay
    # when the verdict came. Relayed, or they would be on neither cloud. Later ones are not.
    sender = Recorder()
    async with running(tmp_path, sender) as (feed, _engine, store, metrics):
        for event in (Event.SCHEDULE_CUTOVER, Event.JOB_SENT, Event.AZURE_CONNECTED):
            await store.transition("a", event)
        await record_cut_over(store, "a", time.time() - 30)
        feed.publish("dt/a", b'{"n": 1}', age=60)  # reached the bridge before the verdict
        feed.publish("dt/a", b'{"n": 2}')  # after it: the device sends on Azure itself
        await until(lambda: len(feed.acked) == 2)
        assert [body for _d, body, _f in sender.sent] == [b'{"n": 1}']
        assert value(metrics, "bridge_relay_messages_total", outcome="skipped") == 1
