"""A kill -9 of the daemon while a cut-over device streams on Azure loses nothing on the
way back to AWS: the reverse path checkpoints only what AWS acknowledged, so a restart
reads the rest again (a message may come twice, at least once; never missing)."""

import asyncio
import secrets

import pytest

from bridge_sim.stack import sim_stack
from tests.daemon.children import Daemon, write_bridge_env
from tests.daemon.parity import aws_clients
from tests.daemon.test_run import until_parity
from tests.relay.fleet import cut_over, make_fleet
from tests.reverse.helpers import Subscriber, azure_device, send, until_mirrored

pytestmark = pytest.mark.timeout(300)
MESSAGES = 60


@pytest.fixture
async def stack(tmp_path):
    async with sim_stack(tmp_path / "sim") as running:
        yield running


def first_seen(messages):
    seen, order = set(), []
    for _topic, body in messages:
        if body["seq"] not in seen:
            seen.add(body["seq"])
            order.append(body["seq"])
    return order


async def test_a_kill_9_mid_stream_loses_nothing(stack, tmp_path):
    env = stack.env()
    iot, _data = aws_clients(env)
    things = await asyncio.to_thread(make_fleet, stack, iot, ["rvk-1"])
    dsn = f"sqlite:///{tmp_path / 'bridge.db'}"
    env_file = write_bridge_env(tmp_path, env, dsn)
    with env_file.open("a") as extra:
        extra.write(
            "BRIDGE_REVERSE__ENABLED=true\nBRIDGE_REVERSE__TOPIC_TEMPLATE=dt/{device}\n"
            f"BRIDGE_REVERSE__CHECKPOINT_CONTAINER=reverse-{secrets.token_hex(3)}\n"
            "BRIDGE_REVERSE__STATE_TTL=0\n"
        )
    log_path = tmp_path / "daemon.log"
    with log_path.open("ab") as log:
        daemon = Daemon(env_file, log)
        daemon.start()
        try:
            await until_parity(env, "rvk-", timeout=60)
            await until_mirrored(dsn, "rvk-1")
            await cut_over(dsn, "rvk-1")
            async with (
                Subscriber(env, ["dt/#"], f"iot-bridge-sub-{secrets.token_hex(3)}") as aws,
                azure_device(env, things["rvk-1"], tmp_path / "device") as device,
            ):
                for seq in range(MESSAGES // 2):
                    await send(device, {"seq": seq})
                async with asyncio.timeout(60):
                    while len(aws.messages) < 5:
                        assert daemon.process.poll() is None, log_path.read_text()[-3000:]
                        await asyncio.sleep(0.02)
                daemon.kill()  # mid-stream: publishes and checkpoints in flight die with it
                # The device goes on sending to Azure while the bridge is away.
                for seq in range(MESSAGES // 2, MESSAGES):
                    await send(device, {"seq": seq})
                daemon.start()
                async with asyncio.timeout(90):
                    while len(first_seen(aws.messages)) < MESSAGES:
                        assert daemon.process.poll() is None, log_path.read_text()[-3000:]
                        await asyncio.sleep(0.1)
                assert first_seen(aws.messages) == list(range(MESSAGES))
                assert {topic for topic, _ in aws.messages} == {"dt/rvk-1"}
            assert daemon.stop() == 0, log_path.read_text()[-3000:]
        finally:
            daemon.stop()
