"""The relay's AMQP sender against the emulator's device AMQP endpoint: real TLS, SASL, CBS.

Each test runs the emulator (without Azurite) in the test's own loop and the sender's
proton reactor in its thread, as in the daemon. What IoT Hub stored is read from the
emulator's event log, the pipeline its Event Hubs endpoint serves.
"""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path

import pytest
from proton import Message

from bridge.azure import IotHubService, RateBudget
from bridge.azure.amqp_message import encode_message
from bridge.azure.amqp_telemetry import AmqpModuleSender, SendFailed
from bridge.azure.models import DeviceIdentity, SasAuth
from bridge.errors import Rejected
from bridge_sim.iothub.emulator import IotHubEmulator
from bridge_sim.iothub.faults import FaultRule
from bridge_sim.iothub.mqtt import Limits
from bridge_sim.iothub.sas import generate_key

pytestmark = pytest.mark.timeout(180)
MODULE = "aws-bridge"
WAIT = 60.0  # seconds any condition may take on a busy machine


@pytest.fixture
async def emulator(tmp_path):
    async with IotHubEmulator(workdir=tmp_path / "hub", azurite=False) as running:
        yield running


@pytest.fixture
async def hub(emulator):
    env = emulator.env()
    budget = RateBudget.for_hub(None, 1)
    async with IotHubService(
        env["IOTHUB_CONNECTION_STRING"], budget=budget, ca_bundle=Path(env["IOTHUB_ROOT_CA"])
    ) as service:
        yield service


async def make_devices(hub, names, *, module=True):
    for name in names:
        await hub.create_or_update_device(DeviceIdentity(name))
        if module:
            await hub.create_or_update_module(name, MODULE)


def make_sender(emulator, hub, **options):
    env = emulator.env()
    return AmqpModuleSender(
        hub,
        MODULE,
        budget=RateBudget.for_hub(None, 1),
        host_name=env["IOTHUB_HOSTNAME"],
        gateway_host=env["IOTHUB_GATEWAY_HOST"],
        ca_file=Path(env["IOTHUB_ROOT_CA"]),
        **options,
    )


def telemetry(emulator, device_id):
    """What IoT Hub stored for the device, in order."""
    log = emulator.events
    partition = log.partition_for(device_id)
    begin = log.begin_sequence_number(partition)
    events = log.read(partition, begin, log.next_sequence_number(partition) - begin)
    return [e for e in events if e.device_id == device_id and e.message_source == "Telemetry"]


async def send(sender, device_id, n, **fields):
    await sender.send(
        device_id,
        f'{{"n": {n}}}'.encode(),
        message_id=f"{device_id}-{n}",
        properties=fields.pop("properties", {"awsTopic": f"dt/{device_id}"}),
        content_type="application/json",
        content_encoding="utf-8",
    )


async def send_until_accepted(sender, device_id, n):
    """Retry what may pass, as the relay engine does; a refusal fails the test."""
    while True:
        try:
            await send(sender, device_id, n)
        except (SendFailed, TimeoutError):
            await asyncio.sleep(random.uniform(0, 0.05))
        else:
            return


async def until(condition, timeout=WAIT):
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)


async def test_many_modules_share_one_connection_each_message_settled_before_send_returns(
    emulator, hub
):
    names = [f"amq-{i}" for i in range(5)]
    await make_devices(hub, names)
    sender = make_sender(emulator, hub)
    try:

        async def lane(name):
            for n in range(30):
                properties = {"awsTopic": f"dt/{name}", "awsTopic1": "dt", "awsTopic2": name}
                await send(sender, name, n, properties=properties)
                # Settled means stored: the message is in IoT Hub when send returns.
                assert telemetry(emulator, name)[-1].message_id == f"{name}-{n}"

        await asyncio.gather(*(lane(name) for name in names))
        assert sender.open_connections == 1
        assert emulator.amqp_devices.connection_count == 1
        for name in names:
            events = telemetry(emulator, name)
            assert [e.message_id for e in events] == [f"{name}-{n}" for n in range(30)]
            event = events[0]
            assert (event.device_id, event.module_id) == (name, MODULE)
            assert (event.content_type, event.content_encoding) == ("application/json", "utf-8")
            assert event.body == b'{"n": 0}'
            assert dict(event.properties) == {
                "awsTopic": f"dt/{name}",
                "awsTopic1": "dt",
                "awsTopic2": name,
            }
            auth = event.extra_annotations["iothub-connection-auth-method"]
            assert '"scope":"module"' in auth
            assert '"type":"sas"' in auth
            assert emulator.amqp_devices.linked(name, MODULE) == 1
    finally:
        await sender.close()


async def test_more_identities_than_a_connection_carries_open_more_connections(emulator, hub):
    names = [f"cap-{i}" for i in range(5)]
    await make_devices(hub, names)
    sender = make_sender(emulator, hub, links_per_connection=2)
    try:
        await asyncio.gather(*(send(sender, name, 0) for name in names))
        assert sender.open_connections == 3
        assert emulator.amqp_devices.connection_count == 3
        assert all(len(telemetry(emulator, name)) == 1 for name in names)
    finally:
        await sender.close()


async def test_refused_identities_raise_rejected_and_passing_faults_do_not(emulator, hub):
    await make_devices(hub, ["ref-1", "ref-2"])
    await make_devices(hub, ["no-module"], module=False)
    sender = make_sender(emulator, hub)
    try:
        with pytest.raises(Rejected):
            await send(sender, "no-module", 0)  # the registry has no such module
        emulator.faults.add(FaultRule(status=401, endpoint="amqp", route_prefix="cbs", count=1))
        with pytest.raises(Rejected, match="put-token with 401"):
            await send(sender, "ref-1", 0)
        emulator.faults.add(FaultRule(status=403, endpoint="amqp", route_prefix="attach", count=1))
        with pytest.raises(Rejected, match="unauthorized-access"):
            await send(sender, "ref-1", 1)
        await send(sender, "ref-1", 2)
        emulator.faults.add(FaultRule(status=401, endpoint="amqp", route_prefix="telemetry"))
        with pytest.raises(Rejected, match="unauthorized-access"):
            await send(sender, "ref-1", 3)
        emulator.faults.clear()
        # What may pass is not a refusal: throttled, 5xx, a token refused for a while.
        for status, route in ((503, "cbs"), (503, "attach"), (429, "telemetry")):
            emulator.faults.add(FaultRule(status=status, endpoint="amqp", route_prefix=route))
            with pytest.raises(SendFailed):
                await send(sender, "ref-2", 0)
            emulator.faults.clear()
        await send(sender, "ref-2", 1)
        assert [e.message_id for e in telemetry(emulator, "ref-1")] == ["ref-1-2"]
        assert [e.message_id for e in telemetry(emulator, "ref-2")] == ["ref-2-1"]
    finally:
        await sender.close()


async def test_a_rotated_key_is_refused_then_read_again(emulator, hub):
    await make_devices(hub, ["rekey"])
    sender = make_sender(emulator, hub)
    try:
        await send(sender, "rekey", 0)
        # New keys, as a rotation does: the hub detaches the link; the cached key is refused.
        await hub.create_or_update_module("rekey", MODULE, SasAuth(generate_key(), generate_key()))
        refused = 0
        async with asyncio.timeout(WAIT):
            while True:
                try:
                    await send(sender, "rekey", 1)
                except Rejected:
                    refused += 1  # the sender forgets the key and reads it again
                except SendFailed:
                    pass
                else:
                    break
        assert refused >= 1
        assert [e.message_id for e in telemetry(emulator, "rekey")] == ["rekey-0", "rekey-1"]
    finally:
        await sender.close()


async def test_connections_dropped_mid_stream_lose_nothing_when_sends_are_retried(emulator, hub):
    names = [f"drp-{i}" for i in range(4)]
    await make_devices(hub, names)
    sender = make_sender(emulator, hub)
    count = 60
    try:
        progress = dict.fromkeys(names, 0)

        async def lane(name):
            for n in range(count):
                await send_until_accepted(sender, name, n)
                progress[name] = n + 1

        lanes = asyncio.gather(*(lane(name) for name in names))
        for mark in (15, 40):
            await until(lambda mark=mark: min(progress.values()) >= mark)
            assert emulator.amqp_devices.drop_all() >= 1
        await lanes
        assert sender.connections_opened >= 3
        for name in names:
            ids = [e.message_id for e in telemetry(emulator, name)]
            first_seen = list(dict.fromkeys(ids))
            assert first_seen == [f"{name}-{n}" for n in range(count)]
    finally:
        await sender.close()


async def test_tokens_are_renewed_on_the_same_connection_before_they_lapse(emulator, hub):
    await make_devices(hub, ["tok"])
    sender = make_sender(emulator, hub, token_ttl=6, renew_before=4)
    try:
        await send(sender, "tok", 0)
        (connection,) = emulator.amqp_devices._connections
        first = connection.grants[("tok", MODULE)].token_expiry
        # A fresh token arrives before the first lapses...
        await until(lambda: connection.grants[("tok", MODULE)].token_expiry > first)
        # ...so after the first token's expiry the same link still sends.
        await until(lambda: time.time() > first + 1)
        await send(sender, "tok", 1)
        assert sender.connections_opened == 1
        assert emulator.amqp_devices.linked("tok", MODULE) == 1
        assert [e.message_id for e in telemetry(emulator, "tok")] == ["tok-0", "tok-1"]
    finally:
        await sender.close()


async def test_a_token_that_lapses_detaches_the_link(emulator, hub):
    await make_devices(hub, ["lapse"])
    # Renewal set so late it never comes in time: the hub must take the link away.
    sender = make_sender(emulator, hub, token_ttl=3, renew_before=1)
    sender._reactor._sweep = 3600
    try:
        await send(sender, "lapse", 0)
        await until(lambda: emulator.amqp_devices.linked("lapse", MODULE) == 0)
        await until(lambda: sender.linked == 0)
        await send(sender, "lapse", 1)  # re-authorized with a fresh token
        assert [e.message_id for e in telemetry(emulator, "lapse")] == ["lapse-0", "lapse-1"]
    finally:
        await sender.close()


@pytest.mark.parametrize("size", [10, 300, 70_000])
def test_hand_encoded_messages_decode_as_proton_reads_them(size):
    body = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    properties = {f"awsTopic{i}": "é/" * (size // 1000 + i) for i in range(30)}
    encoded = encode_message(
        body,
        message_id="m-1",
        properties=properties,
        content_type="application/json",
        content_encoding="utf-8",
    )
    message = Message()
    message.decode(encoded)
    assert message.body == body
    assert message.id == "m-1"
    assert (message.content_type, message.content_encoding) == ("application/json", "utf-8")
    assert message.properties == properties
    bare = Message()
    bare.decode(encode_message(b"", message_id="m-2", properties={}))
    assert (bare.id, bare.properties, bare.body) == ("m-2", None, b"")


async def test_a_connection_that_never_answers_is_replaced(emulator, hub):
    await make_devices(hub, ["hung"])

    writers = []

    async def silent(reader, writer):
        writers.append(writer)
        await reader.read()  # takes the TLS hello and says nothing, ever

    server = await asyncio.start_server(silent, emulator.gateway_host, 0)
    port = server.sockets[0].getsockname()[1]
    sender = make_sender(emulator, hub, port=port, send_timeout=2.0)
    try:
        for _ in range(2):
            with pytest.raises(TimeoutError):
                await send(sender, "hung", 0)
        # Each timeout gave up the connection it waited on, instead of queueing on it.
        await until(lambda: sender.connections_opened == 2)
        await until(lambda: sender.open_connections <= 1)
    finally:
        await sender.close()
        server.close()
        for writer in writers:
            writer.close()
        await server.wait_closed()


async def test_the_d2c_throttle_paces_sends_and_rejects_past_its_wait(emulator, hub):
    names = [f"thr-{i}" for i in range(10)]
    await make_devices(hub, names)
    emulator.quotas.reconfigure("S1", 1)  # 100 sends a second, a second's worth at once
    sender = make_sender(emulator, hub)
    try:
        began = time.monotonic()

        async def lane(name):
            for n in range(30):
                await send(sender, name, n)

        await asyncio.gather(*(lane(name) for name in names))
        # 300 sends: the first 100 at once, the other 200 at 100 a second at best.
        assert time.monotonic() - began >= 1.8
        assert all(len(telemetry(emulator, name)) == 30 for name in names)
        # A hub that will not wait rejects what is over the throttle; nothing of it is kept.
        emulator.amqp_devices.hub.limits = Limits(max_throttle_wait=0.0)
        refused = []
        for n in range(30, 400):
            try:
                await send(sender, "thr-0", n)
            except SendFailed as error:
                refused.append((n, str(error)))
        assert refused
        assert all("resource-limit-exceeded" in error for _, error in refused)
        stored = {e.message_id for e in telemetry(emulator, "thr-0")}
        assert not stored & {f"thr-0-{n}" for n, _ in refused}
        assert len(stored) == 400 - len(refused)
    finally:
        await sender.close()


async def test_idle_links_are_given_back_and_the_next_message_authorizes_again(emulator, hub):
    await make_devices(hub, ["idle-a", "idle-b"])
    sender = make_sender(emulator, hub, idle_seconds=1.0)
    try:
        await send(sender, "idle-a", 0)
        await send(sender, "idle-b", 0)
        assert sender.linked == 2
        # idle-b keeps sending: only idle-a's link goes.
        async with asyncio.timeout(WAIT):
            n = 1
            while sender.closed_idle < 1:
                await send(sender, "idle-b", n)
                n += 1
                await asyncio.sleep(0.1)
        assert emulator.amqp_devices.linked("idle-b", MODULE) == 1
        await until(lambda: emulator.amqp_devices.linked("idle-a", MODULE) == 0)
        # Once nothing sends, the connection itself goes too.
        await until(lambda: sender.linked == 0 and sender.open_connections == 0)
        await send(sender, "idle-a", 1)  # a new connection, a fresh token, a new link
        assert sender.open_connections == 1
        assert [e.message_id for e in telemetry(emulator, "idle-a")] == ["idle-a-0", "idle-a-1"]
    finally:
        await sender.close()
