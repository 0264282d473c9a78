"""The relay end to end: devices on the AWS stand-in (awsiotsdk, their own certificates)
publish telemetry, the daemon (mirror + relay) relays it, the IoT Hub emulator captures it."""

import asyncio
import contextlib
import json

import aiohttp
import pytest

from bridge.config import CloudSettings, RelaySettings
from bridge.core.store import open_store
from bridge.daemon.app import RunOptions, run_daemon
from bridge.metrics import Metrics
from bridge_sim.stack import sim_stack
from tests.daemon.parity import aws_clients
from tests.daemon.test_run import bridge_settings, until_parity
from tests.relay.fleet import (
    captured,
    connect,
    cut_over,
    first_seen_seqs,
    make_fleet,
    publish,
    publish_raw,
    read_event_hub,
    until_captured,
)

pytestmark = pytest.mark.timeout(240)


@pytest.fixture
async def stack(tmp_path):
    async with sim_stack(tmp_path / "sim") as running:
        yield running


@contextlib.asynccontextmanager
async def daemon(env, settings):
    metrics = Metrics.create()
    task = asyncio.create_task(
        run_daemon(CloudSettings(**env), settings, RunOptions(), metrics=metrics)
    )
    try:
        yield metrics
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        assert not task.done() or task.cancelled() or task.exception() is None


def sample(metrics, name, **labels):
    return metrics.registry.get_sample_value(name, labels) or 0


async def until_metric(metrics, name, value, timeout=30.0, **labels):
    async with asyncio.timeout(timeout):
        while sample(metrics, name, **labels) < value:
            await asyncio.sleep(0.05)


def linked(stack, transport, device_id):
    """Whether the relay module of `device_id` is on the emulator's endpoint of `transport`."""
    if transport == "amqp":
        return stack.iothub.amqp_devices.linked(device_id, "aws-bridge") > 0
    return stack.iothub.devices.connection(device_id, "aws-bridge") is not None


TRANSPORTS = pytest.mark.parametrize("transport", ["amqp", "mqtt"])


@TRANSPORTS
async def test_telemetry_arrives_once_in_order_as_the_device_until_it_is_cut_over(
    stack, tmp_path, transport
):
    env = stack.env()
    iot, _data = aws_clients(env)
    names = [f"rly-{i}" for i in range(3)]
    things = await asyncio.to_thread(make_fleet, stack, iot, names)
    settings = bridge_settings(tmp_path).model_copy(
        # state_ttl 0: the relay reads each device's state afresh, so the test need not
        # wait out a cache after the cutover below.
        update={
            "relay": RelaySettings(
                enabled=True, topics=["dt/+=2", "tele/#=2"], state_ttl=0, transport=transport
            )
        }
    )
    async with daemon(env, settings) as metrics:
        await until_parity(env, "rly-")  # the mirror created the devices and relay modules
        devices = await asyncio.to_thread(connect, stack, things)
        try:
            for seq in range(20):
                for name, device in devices.items():
                    await asyncio.to_thread(publish, device, f"dt/{name}", {"seq": seq, "d": name})
            # An unknown thing's topic, and a topic whose device level is missing.
            await publish_raw(stack, "dt/not-a-thing", b'{"seq": 0}')
            await publish_raw(stack, "tele", b'{"seq": 0}')
            found = await until_captured(stack, dict.fromkeys(names, 20))
            # Sent over the transport asked for (the other endpoint never saw the module).
            assert all(linked(stack, transport, name) for name in names)
            other = "mqtt" if transport == "amqp" else "amqp"
            assert not any(linked(stack, other, name) for name in names)
            for name in names:
                events = found[name]
                assert first_seen_seqs(events) == list(range(20))
                assert len({e["messageId"] for e in events}) == len(events) == 20
                for event in events:
                    assert (event["deviceId"], event["moduleId"]) == (name, "aws-bridge")
                    assert event["contentType"] == "application/json"
                    props = event["properties"]
                    assert (props["awsTopic"], props["awsTopic1"], props["awsTopic2"]) == (
                        f"dt/{name}",
                        "dt",
                        name,
                    )
                    assert "awsTopic3" not in props
                    assert props["awsReceivedAt"].endswith("Z")
            # The same, as an Azure consumer reads it: Event Hubs system properties.
            hub_events = await read_event_hub(env, 60)
            for event in hub_events:
                system = event.system_properties
                body = json.loads(event.body_as_str())
                assert system[b"iothub-connection-device-id"] == body["d"].encode()
                assert system[b"iothub-connection-module-id"] == b"aws-bridge"
                assert event.content_type == "application/json"
                assert system[b"content-encoding"] == b"utf-8"
                assert event.properties[b"awsTopic"] == f"dt/{body['d']}".encode()
            assert len({e.system_properties[b"message-id"] for e in hub_events}) == 60
            await until_metric(metrics, "bridge_relay_messages_total", 2, outcome="dead_lettered")
            async with open_store(settings.store.dsn) as store:
                letters = await store.dead_letters(10)
            assert sorted((dl.reason, dl.payload["topic"]) for dl in letters) == [
                ("unknown_device", "dt/not-a-thing"),
                ("unresolved_device", "tele"),
            ]
            # rly-0 moves to Azure: its AWS telemetry is no longer relayed; the others' is.
            await cut_over(settings.store.dsn, "rly-0")
            for seq in range(20, 25):
                for name, device in devices.items():
                    await asyncio.to_thread(publish, device, f"dt/{name}", {"seq": seq, "d": name})
            await until_metric(metrics, "bridge_relay_messages_total", 5, outcome="skipped")
            found = await until_captured(stack, {"rly-1": 25, "rly-2": 25})
            assert first_seen_seqs(found["rly-1"]) == list(range(25))
            assert len(await captured(stack, "rly-0")) == 20
            assert sample(metrics, "bridge_relay_messages_total", outcome="sent") == 70
            assert sample(metrics, "bridge_relay_lag_seconds_count") == 70
        finally:
            for device in devices.values():
                await asyncio.to_thread(device.stop)


async def _faults(stack, method, body=None):
    service = stack.iothub.service
    url = f"https://{service.host}:{service.port}/_emulator/faults"
    async with (
        aiohttp.ClientSession() as client,
        client.request(method, url, json=body, ssl=False) as answer,
    ):
        assert answer.status < 300, await answer.text()


@TRANSPORTS
async def test_an_iot_hub_outage_mid_stream_loses_nothing_and_keeps_order(
    stack, tmp_path, transport
):
    env = stack.env()
    iot, _data = aws_clients(env)
    names = [f"out-{i}" for i in range(2)]
    things = await asyncio.to_thread(make_fleet, stack, iot, names)
    settings = bridge_settings(tmp_path).model_copy(
        update={"relay": RelaySettings(enabled=True, topics=["dt/+=2"], transport=transport)}
    )
    async with daemon(env, settings) as metrics:
        await until_parity(env, "out-")
        devices = await asyncio.to_thread(connect, stack, things)
        try:
            for seq in range(10):
                for name, device in devices.items():
                    await asyncio.to_thread(publish, device, f"dt/{name}", {"seq": seq, "d": name})
            await until_captured(stack, dict.fromkeys(names, 10))
            # IoT Hub fails a third of the relay's sends and connection attempts (503s,
            # dropped connections; over AMQP also refused tokens and links), then drops
            # every connection at once, then recovers.
            await _faults(stack, "POST", {"status": 503, "endpoint": transport, "fraction": 0.33})
            for seq in range(10, 40):
                for name, device in devices.items():
                    await asyncio.to_thread(publish, device, f"dt/{name}", {"seq": seq, "d": name})
                if seq == 25:
                    await _drop_all(stack)
            await until_metric(
                metrics, "bridge_retries_total", 3, side="azure", operation="d2cSend"
            )
            await _faults(stack, "DELETE")
            found = await until_captured(stack, dict.fromkeys(names, 40))
            for name in names:
                assert first_seen_seqs(found[name]) == list(range(40))
            async with open_store(settings.store.dsn) as store:
                assert await store.dead_letters(10) == []
        finally:
            for device in devices.values():
                await asyncio.to_thread(device.stop)


async def _drop_all(stack):
    service = stack.iothub.service
    url = f"https://{service.host}:{service.port}/_emulator/connections/drop"
    async with (
        aiohttp.ClientSession() as client,
        client.post(url, json={}, ssl=False) as answer,
    ):
        assert answer.status == 200, await answer.text()


async def test_several_aws_sessions_share_the_stream_and_relay_each_message_once(stack, tmp_path):
    # AWS IoT allows about 100 publishes/s per connection: past that the relay reads through
    # several sessions of one shared-subscription group, and AWS splits the stream.
    env = stack.env()
    iot, _data = aws_clients(env)
    names = [f"ses-{i}" for i in range(4)]
    things = await asyncio.to_thread(make_fleet, stack, iot, names)
    settings = bridge_settings(tmp_path)
    settings = settings.model_copy(
        update={"relay": RelaySettings(enabled=True, topics=["dt/+=2"], sessions=3)}
    )
    async with daemon(env, settings) as metrics:
        await until_parity(env, "ses-")
        devices = await asyncio.to_thread(connect, stack, things)
        try:
            for seq in range(15):
                for name, device in devices.items():
                    await asyncio.to_thread(publish, device, f"dt/{name}", {"seq": seq, "d": name})
            found = await until_captured(stack, dict.fromkeys(names, 15))
            for name in names:
                # Once each: a group misconfigured would hand every session every message.
                assert sorted(first_seen_seqs(found[name])) == list(range(15))
                assert len(found[name]) == 15
            assert sample(metrics, "bridge_relay_messages_total", outcome="sent") == 60
        finally:
            for device in devices.values():
                await asyncio.to_thread(device.stop)
    log = stack.aws.broker.log_path.read_text()
    relay_id = f"{settings.mirror.client_id}-relay"
    for n in range(3):
        assert f" as {relay_id}-{n} " in log, f"session {n} never connected"
