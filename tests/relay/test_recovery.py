"""A kill -9 of the daemon mid-stream loses no telemetry: what the relay had not
acknowledged comes again from the persistent session, under the same message id."""

import asyncio
import json
import time

import pytest

from bridge_sim.stack import sim_stack
from tests.daemon.children import Daemon, write_bridge_env
from tests.daemon.parity import aws_clients
from tests.daemon.test_run import until_parity
from tests.relay.fleet import captured, connect, first_seen_seqs, make_fleet, publish

pytestmark = pytest.mark.timeout(300)
MESSAGES = 150  # per device
PACE = 0.01  # seconds between one device's publishes: under AWS's 100/s per connection


@pytest.fixture
async def stack(tmp_path):
    async with sim_stack(tmp_path / "sim") as running:
        yield running


def _stream(device, name, progress):
    for seq in range(MESSAGES):
        publish(device, f"dt/{name}", {"seq": seq, "at": time.time()})
        progress[name] = seq + 1
        time.sleep(PACE)


async def test_a_kill_9_mid_stream_loses_nothing(stack, tmp_path):
    env = stack.env()
    iot, _data = aws_clients(env)
    names = [f"kil-{i}" for i in range(3)]
    things = await asyncio.to_thread(make_fleet, stack, iot, names)
    env_file = write_bridge_env(tmp_path, env, f"sqlite:///{tmp_path / 'bridge.db'}")
    with env_file.open("a") as extra:
        extra.write('BRIDGE_RELAY__ENABLED=true\nBRIDGE_RELAY__TOPICS=["dt/+=2"]\n')
    log_path = tmp_path / "daemon.log"
    with log_path.open("ab") as log:
        daemon = Daemon(env_file, log)
        daemon.start()
        devices = {}
        try:
            await until_parity(env, "kil-", timeout=60)
            devices = await asyncio.to_thread(connect, stack, things)
            progress = dict.fromkeys(names, 0)
            streams = [
                asyncio.create_task(asyncio.to_thread(_stream, devices[name], name, progress))
                for name in names
            ]
            async with asyncio.timeout(60):
                while len(await captured(stack, names[0])) < 20:
                    assert daemon.process.poll() is None, log_path.read_text()[-3000:]
                    await asyncio.sleep(0.05)
            daemon.kill()  # mid-stream: sends and PUBACKs in flight die with it
            killed_at = {name: len(await captured(stack, name)) for name in names}
            assert all(count < MESSAGES for count in killed_at.values())
            # The devices go on publishing while the bridge is away.
            published_at_kill = dict(progress)
            async with asyncio.timeout(30):
                while any(progress[n] < min(published_at_kill[n] + 10, MESSAGES) for n in names):
                    await asyncio.sleep(0.05)
            daemon.start()
            await asyncio.gather(*streams)
            async with asyncio.timeout(90):
                while True:
                    found = {name: await captured(stack, name) for name in names}
                    if all(len({e["messageId"] for e in found[n]}) >= MESSAGES for n in names):
                        break
                    assert daemon.process.poll() is None, log_path.read_text()[-3000:]
                    await asyncio.sleep(0.2)
            for name in names:
                events = found[name]
                assert first_seen_seqs(events) == list(range(MESSAGES)), name
                # A repeat is a redelivery of a message IoT Hub already had: same id, same body.
                bodies = {}
                for event in events:
                    assert bodies.setdefault(event["messageId"], event["body"]) == event["body"]
                assert {json.loads(b)["seq"] for b in bodies.values()} == set(range(MESSAGES))
            assert daemon.stop() == 0
        finally:
            for device in devices.values():
                await asyncio.to_thread(device.stop)
            daemon.stop()
