"""AwsSource against the AWS stand-in: mosquitto with mutual TLS, moto, the glue's events."""

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiomqtt
import boto3
import botocore.config
import pytest
from awscrt import mqtt
from awsiot import iotshadow

from bridge.aws.publisher import AwsPublisher
from bridge.aws.source import AwsSource, default_client_id
from bridge.config import CloudSettings
from bridge.core.events import MembershipChanged, ShadowChanged, ThingChanged
from bridge.core.ports import Delivery
from bridge.errors import ConfigError, SourceError
from bridge_sim.aws.standin import AwsStandIn
from bridge_sim.pki import CertificateAuthority
from tests.aws_devices import TIMEOUT, connect_device, register_thing

REGION = "eu-west-1"
FAST = {"reconnect_delay_s": (0.1, 1.0), "connect_timeout_s": 20.0}


@pytest.fixture
async def aws(tmp_path: Path) -> AsyncIterator[AwsStandIn]:
    async with AwsStandIn(workdir=tmp_path / "aws", region=REGION) as standin:
        yield standin


@pytest.fixture
def cloud(aws: AwsStandIn) -> CloudSettings:
    return CloudSettings(**aws.env())  # type: ignore[arg-type]


def iot_client(aws: AwsStandIn) -> Any:
    env = aws.env()
    return boto3.client(
        "iot",
        endpoint_url=env["AWS_ENDPOINT_URL"],
        region_name=REGION,
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        config=botocore.config.Config(retries={"max_attempts": 1}),
    )


class Consumer:
    """Reads a source in the background, as the engine does, acking only when told."""

    def __init__(self, source: AwsSource) -> None:
        self.source = source
        self.seen: list[Delivery] = []
        self._new = asyncio.Event()
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        async for delivery in self.source.deliveries():
            self.seen.append(delivery)
            self._new.set()

    async def take(
        self, match: Callable[[Delivery], bool], count: int = 1, timeout: float = TIMEOUT
    ) -> list[Delivery]:
        """The first `count` deliveries seen so far or later that match."""
        async with asyncio.timeout(timeout):
            while len(found := [d for d in self.seen if match(d)]) < count:
                self._new.clear()
                await self._new.wait()
        return found[:count]

    async def stop(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


def tool_client(aws: AwsStandIn) -> aiomqtt.Client:
    """A privileged client on the broker's plain loopback listener (no policy applies)."""
    assert aws.broker is not None
    return aiomqtt.Client(aws.host, aws.broker.plain_port, identifier="test-tool")


async def publish_events(aws: AwsStandIn, names: list[str]) -> None:
    async with tool_client(aws) as tool:
        for version, name in enumerate(names, start=1):
            body = {"thingName": name, "versionNumber": version, "operation": "UPDATED"}
            await tool.publish(f"$aws/events/thing/{name}/updated", json.dumps(body), qos=1)


def thing_event(name: str) -> Callable[[Delivery], bool]:
    return lambda d: isinstance(d.event, ThingChanged) and d.event.device_id == name


def not_presence(delivery: Delivery) -> bool:
    return "/presence/" not in delivery.topic


async def test_registry_and_shadow_changes_arrive_as_core_events(
    aws: AwsStandIn, cloud: CloudSettings
) -> None:
    iot = iot_client(aws)
    async with AwsSource(cloud, **FAST) as source:
        assert source.connected
        consumer = Consumer(source)
        thing = await asyncio.to_thread(register_thing, iot, "valve-1", REGION)
        await asyncio.to_thread(
            iot.update_thing,
            thingName="valve-1",
            attributePayload={"attributes": {"site": "north"}},
        )
        await asyncio.to_thread(iot.create_thing_group, thingGroupName="plant")
        await asyncio.to_thread(
            iot.add_thing_to_thing_group, thingGroupName="plant", thingName="valve-1"
        )
        await asyncio.to_thread(
            iot.remove_thing_from_thing_group, thingGroupName="plant", thingName="valve-1"
        )
        device = await asyncio.to_thread(connect_device, aws, thing)
        shadow = iotshadow.IotShadowClient(device.client)
        update = iotshadow.UpdateShadowRequest(
            thing_name="valve-1", state=iotshadow.ShadowState(reported={"open": True})
        )
        await asyncio.to_thread(
            shadow.publish_update_shadow(update, mqtt.QoS.AT_LEAST_ONCE).result, TIMEOUT
        )
        await asyncio.to_thread(device.stop)
        await asyncio.to_thread(
            iot.detach_thing_principal, thingName="valve-1", principal=thing.certificate_arn
        )
        await asyncio.to_thread(iot.delete_thing, thingName="valve-1")

        things = await consumer.take(thing_event("valve-1"), count=3)
        created, updated, deleted = (d.event for d in things)
        assert isinstance(created, ThingChanged)
        assert isinstance(updated, ThingChanged)
        assert isinstance(deleted, ThingChanged)
        assert (created.version, created.deleted) == (1, False)
        assert (updated.version, updated.attributes) == (2, {"site": "north"})
        assert deleted.deleted
        added, removed = await consumer.take(
            lambda d: isinstance(d.event, MembershipChanged), count=2
        )
        assert added.event == MembershipChanged(
            "valve-1", "plant", added=True, at_ms=getattr(added.event, "at_ms", None)
        )
        assert isinstance(removed.event, MembershipChanged)
        assert not removed.event.added
        (shadowed,) = await consumer.take(lambda d: isinstance(d.event, ShadowChanged))
        assert shadowed.event == ShadowChanged(
            "valve-1",
            None,
            1,
            desired=None,
            reported={"open": True},
            at_ms=getattr(shadowed.event, "at_ms", None),
        )
        assert shadowed.error is None
        assert shadowed.received_at <= time.monotonic()
        for delivery in consumer.seen:
            delivery.ack()
        await consumer.stop()


async def test_unacked_messages_come_again_after_a_restart_and_acked_ones_do_not(
    aws: AwsStandIn, cloud: CloudSettings
) -> None:
    names = [f"door-{n}" for n in range(6)]
    async with AwsSource(cloud, client_id="iot-bridge-restart", **FAST) as first:
        consumer = Consumer(first)
        await publish_events(aws, names)
        got = await consumer.take(lambda d: d.topic.startswith("$aws/events/thing/"), count=6)
        assert [d.event.device_id for d in got if isinstance(d.event, ThingChanged)] == names
        for delivery in got[:3]:
            delivery.ack()  # stored: the broker may forget these
        await consumer.stop()
    # A new client object, as after a restart of the bridge process, with the same id.
    async with AwsSource(cloud, client_id="iot-bridge-restart", **FAST) as second:
        consumer = Consumer(second)
        again = await consumer.take(lambda d: d.topic.startswith("$aws/events/thing/"), count=3)
        assert [d.event.device_id for d in again if isinstance(d.event, ThingChanged)] == names[3:]
        for delivery in again:
            delivery.ack()
        # Nothing acknowledged comes back: a marker published now arrives after any resend.
        await publish_events(aws, ["marker"])
        await consumer.take(thing_event("marker"))
        redelivered = [d for d in consumer.seen if d.topic.startswith("$aws/events/thing/door")]
        assert len(redelivered) == 3
        await consumer.stop()


async def test_messages_published_while_away_arrive_after_reconnecting(
    aws: AwsStandIn, cloud: CloudSettings
) -> None:
    async with AwsSource(cloud, client_id="iot-bridge-away", **FAST):
        pass  # creates the session; leaving keeps it for session_expiry_s
    await publish_events(aws, ["lamp-1", "lamp-2"])
    async with AwsSource(cloud, client_id="iot-bridge-away", **FAST) as source:
        consumer = Consumer(source)
        got = await consumer.take(lambda d: d.topic.startswith("$aws/events/thing/"), count=2)
        assert [d.event.device_id for d in got if isinstance(d.event, ThingChanged)] == [
            "lamp-1",
            "lamp-2",
        ]
        await consumer.stop()


async def test_a_malformed_payload_is_an_error_delivery_that_can_be_acked(
    aws: AwsStandIn, cloud: CloudSettings
) -> None:
    async with AwsSource(cloud, client_id="iot-bridge-malformed", **FAST) as source:
        consumer = Consumer(source)
        async with tool_client(aws) as tool:
            await tool.publish("$aws/events/thing/pump-1/updated", b"{not json", qos=1)
            await tool.publish("$aws/things/pump-1/shadow/update/documents", b"[]", qos=1)
        bad, worse = await consumer.take(not_presence, count=2)
        assert (bad.event, bad.error, bad.payload) == (None, "payload is not JSON", b"{not json")
        assert (worse.event, worse.error) == (None, "payload is not a JSON object")
        bad.ack()
        worse.ack()
        await consumer.stop()
    # Acknowledged: a restart does not bring them back.
    async with AwsSource(cloud, client_id="iot-bridge-malformed", **FAST) as source:
        consumer = Consumer(source)
        await publish_events(aws, ["after"])
        await consumer.take(thing_event("after"))
        assert [d.topic for d in consumer.seen if not_presence(d)] == [
            "$aws/events/thing/after/updated"
        ]
        await consumer.stop()


async def test_a_wrong_ca_fails_fast_and_says_why(
    aws: AwsStandIn, cloud: CloudSettings, tmp_path: Path
) -> None:
    other = tmp_path / "other-ca.pem"
    other.write_text(CertificateAuthority.create("Not the broker's CA").cert_pem)
    wrong = cloud.model_copy(update={"AWS_IOT_ROOT_CA": other})
    started = time.monotonic()
    with pytest.raises(SourceError, match=r"AWS_IO_TLS.*AWS_IOT_ROOT_CA"):
        async with AwsSource(wrong, connect_timeout_s=90):
            pass
    # The first failure ends it, not the timeout. s2n (awscrt's TLS on Linux) delays a
    # failed handshake by 10 to 30 s on purpose ("blinding"), hence the generous bound.
    assert time.monotonic() - started < 60


async def test_it_reconnects_and_resumes_the_session_after_the_broker_restarts(
    aws: AwsStandIn, cloud: CloudSettings
) -> None:
    assert aws.broker is not None
    async with AwsSource(cloud, client_id="iot-bridge-broker-restart", **FAST) as source:
        consumer = Consumer(source)
        await publish_events(aws, ["held"])
        (held,) = await consumer.take(thing_event("held"))  # never acked
        await aws.broker.restart()
        async with asyncio.timeout(TIMEOUT):
            while not source.connected:
                await asyncio.sleep(0.05)
        # The session survived the restart (mosquitto persists it): the unacked one is back.
        copies = await consumer.take(thing_event("held"), count=2)
        assert copies[1].payload == held.payload
        # And the subscriptions work again. (Published by a tool client: the stand-in's own
        # glue does not reconnect after a broker restart, see GlueClient.run.)
        await publish_events(aws, ["after-restart"])
        (after,) = await consumer.take(thing_event("after-restart"))
        after.ack()
        copies[1].ack()
        await consumer.stop()


async def test_inbox_stays_bounded_when_the_engine_is_slower_than_the_broker(
    aws: AwsStandIn, cloud: CloudSettings
) -> None:
    names = [f"flood-{n:02d}" for n in range(40)]
    async with AwsSource(cloud, client_id="iot-bridge-slow", max_pending=5, **FAST) as source:
        await publish_events(aws, names)
        await asyncio.sleep(0.5)
        # Receive Maximum: nothing taken, nothing acked, so the broker sent 5 at most.
        assert source.pending <= 5
        seen: list[str] = []
        peak = 0
        async with asyncio.timeout(TIMEOUT * 3):
            async for delivery in source.deliveries():
                if isinstance(delivery.event, ThingChanged):
                    seen.append(delivery.event.device_id)
                delivery.ack()
                await asyncio.sleep(0.01)  # a slow store
                peak = max(peak, source.pending)
                if len(seen) == len(names):
                    break
        assert seen == names  # all of them, in order, none twice
        assert peak <= 5 + 5  # limit + one Receive Maximum (mosquitto 2.0.11 overshoots)


async def test_replicas_subscribe_through_a_shared_subscription(
    aws: AwsStandIn, cloud: CloudSettings
) -> None:
    async with (
        AwsSource(cloud, client_id="iot-bridge-a", share_group="bridge", **FAST) as one,
        AwsSource(cloud, client_id="iot-bridge-b", share_group="bridge", **FAST) as two,
    ):
        # Entering means every filter was granted at QoS 1.
        assert one.connected
        assert two.connected
        assert one.filters[0] == "$share/bridge/$aws/events/thing/+/+"
        assert len(one.filters) == len(two.filters) == 11


@pytest.mark.xfail(
    reason="mosquitto 2.0.11 routes no $-prefixed topic to a $share/ subscription "
    "(measured with plain clients too); AWS IoT does",
    raises=TimeoutError,
)
async def test_replicas_split_the_traffic_of_a_shared_subscription(
    aws: AwsStandIn, cloud: CloudSettings
) -> None:
    names = [f"share-{n:02d}" for n in range(20)]
    async with (
        AwsSource(cloud, client_id="iot-bridge-a", share_group="bridge", **FAST) as one,
        AwsSource(cloud, client_id="iot-bridge-b", share_group="bridge", **FAST) as two,
    ):
        consumers = [Consumer(one), Consumer(two)]
        await publish_events(aws, names)
        try:
            async with asyncio.timeout(3):
                while sum(len(c.seen) for c in consumers) < len(names):
                    await asyncio.sleep(0.05)
        finally:
            for consumer in consumers:
                await consumer.stop()
        split = [
            {d.event.device_id for d in c.seen if isinstance(d.event, ThingChanged)}
            for c in consumers
        ]
        assert split[0] | split[1] == set(names)
        assert not split[0] & split[1]


async def test_cancelling_the_consumer_and_leaving_do_not_hang(cloud: CloudSettings) -> None:
    source = AwsSource(cloud, client_id="iot-bridge-cancel", **FAST)

    async def consume() -> None:
        async with source:
            async for _ in source.deliveries():
                pass

    task = asyncio.create_task(consume())
    async with asyncio.timeout(TIMEOUT):
        while not source.connected:
            await asyncio.sleep(0.05)
    task.cancel()
    async with asyncio.timeout(TIMEOUT):
        with pytest.raises(asyncio.CancelledError):
            await task
    assert not source.connected
    assert [d async for d in source.deliveries()] == []  # closed: ends at once


def test_settings_are_checked_up_front(cloud: CloudSettings) -> None:
    assert default_client_id(cloud).startswith("iot-bridge-")
    assert default_client_id(cloud) == AwsSource(cloud).client_id
    with pytest.raises(ConfigError, match="AWS_IOT_ROOT_CA"):
        AwsSource(cloud.model_copy(update={"AWS_IOT_ROOT_CA": None}))
    with pytest.raises(ValueError, match="share_group"):
        AwsSource(cloud, share_group="a/b")
    with pytest.raises(ValueError, match="session_expiry_s"):
        AwsSource(cloud, session_expiry_s=0)
    with pytest.raises(ValueError, match="max_pending"):
        AwsSource(cloud, max_pending=0)


async def test_mqtt5_user_properties_travel_from_the_publisher_to_the_source(
    cloud: CloudSettings,
) -> None:
    # How the relay tells the reverse path's republishes from devices' own messages.
    async with (
        AwsSource(cloud, client_id="iot-bridge-props", filters=["dt/#"], **FAST) as source,
        AwsPublisher(cloud, client_id="iot-bridge-props-pub") as publisher,
    ):
        consumer = Consumer(source)
        try:
            await publisher.publish(
                "dt/p-1", b"{}", user_properties={"iot-bridge-origin": "azure", "k": "v"}
            )
            await publisher.publish("dt/p-2", b"{}")
            marked, plain = [
                (await consumer.take(lambda d, t=topic: d.topic == t))[0]
                for topic in ("dt/p-1", "dt/p-2")
            ]
            assert marked.properties == {"iot-bridge-origin": "azure", "k": "v"}
            assert plain.properties == {}
            marked.ack()
            plain.ack()
        finally:
            await consumer.stop()
