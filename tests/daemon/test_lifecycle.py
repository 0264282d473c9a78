"""`iot-bridge run` as an operator runs it: signals during the initial sync, exit codes."""

import asyncio
import json
import os
import subprocess
import sys
import time

import aiohttp
import pytest

from bridge.exit_codes import ExitCode
from tests.daemon.children import Daemon, write_bridge_env
from tests.daemon.parity import aws_clients
from tests.daemon.test_run import until_parity

pytestmark = pytest.mark.timeout(300)
PREFIX = "life-"


def _settings(path, **changes):
    lines = [line for line in path.read_text().splitlines() if line.split("=")[0] not in changes]
    lines += [f"{name}={value}" for name, value in changes.items()]
    path.write_text("\n".join(lines) + "\n")


def _port(path):
    for line in path.read_text().splitlines():
        if line.startswith("BRIDGE_HTTP__PORT="):
            return int(line.split("=", 1)[1])
    raise AssertionError("no port")


async def _readiness(port):
    async with aiohttp.ClientSession() as client:
        try:
            async with client.get(f"http://127.0.0.1:{port}/readyz") as answer:
                return (await answer.json())["checks"]
        except aiohttp.ClientError:
            return None


async def test_sigterm_during_the_initial_sync_stops_cleanly_and_the_next_start_resumes(
    stack, tmp_path
):
    env = stack.env()
    iot, data = aws_clients(env)
    for i in range(30):
        iot.create_thing(thingName=f"{PREFIX}{i:02d}", attributePayload={"attributes": {"n": "1"}})
        data.update_thing_shadow(
            thingName=f"{PREFIX}{i:02d}", payload=json.dumps({"state": {"desired": {"i": i}}})
        )
    env_file = write_bridge_env(tmp_path, env, f"sqlite:///{tmp_path / 'bridge.db'}")
    # AWS reads paced far below the default: the initial read takes minutes, so the
    # signal surely lands in the middle of it.
    _settings(env_file, BRIDGE_MIRROR__AWS_RATE_SCALE="0.02", BRIDGE_SHUTDOWN_TIMEOUT="20")
    with (tmp_path / "daemon.log").open("ab") as log:
        await _interrupt_then_resume(env, env_file, Daemon(env_file, log), tmp_path)


async def _interrupt_then_resume(env, env_file, daemon, tmp_path):
    port = _port(env_file)
    daemon.start()
    try:
        async with asyncio.timeout(120):
            while True:
                checks = await _readiness(port)
                if checks and checks["mirror.aws_connected"]["ok"]:
                    break
                assert daemon.process.poll() is None, (tmp_path / "daemon.log").read_text()
                await asyncio.sleep(0.2)
        assert checks["mirror.initial_sync"]["ok"] is False
        asked = time.monotonic()
        daemon.process.terminate()
        code = await asyncio.to_thread(daemon.process.wait, 60)
        assert code == ExitCode.OK, (tmp_path / "daemon.log").read_text()
        assert time.monotonic() - asked < 20
        # The next start, with the pace back to normal, carries the sync to its end.
        _settings(env_file, BRIDGE_MIRROR__AWS_RATE_SCALE="0")
        daemon.start()
        await until_parity(env, PREFIX, timeout=120)
        async with asyncio.timeout(60):
            while not (checks := await _readiness(port)) or not all(
                check["ok"] for check in checks.values()
            ):
                await asyncio.sleep(0.2)
    finally:
        code = await asyncio.to_thread(daemon.stop)
    assert code == ExitCode.OK


def _run(tmp_path, settings):
    env_file = tmp_path / "bad.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in settings.items()))
    return subprocess.run(  # noqa: S603 - our own interpreter and CLI
        [sys.executable, "-m", "bridge", "run", "--env-file", str(env_file)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
        env={
            k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "IOTHUB_", "BRIDGE_"))
        },
    )


@pytest.mark.parametrize(
    ("settings", "code", "sentence"),
    [
        ({"BRIDGE_HTTP__PORT": "not-a-port"}, ExitCode.CONFIG_ERROR, "http.port"),
        ({"BRIDGE_SHUTDOWN_TIMEOUT": "0"}, ExitCode.CONFIG_ERROR, "shutdown_timeout"),
        ({}, ExitCode.CONFIG_ERROR, "IOTHUB_CONNECTION_STRING is not set"),
        (
            {
                "IOTHUB_CONNECTION_STRING": "HostName=h;SharedAccessKeyName=k;SharedAccessKey=eA==",
                "BRIDGE_STORE__DSN": "sqlite:////nonexistent-dir/for/sure/bridge.db",
            },
            ExitCode.STARTUP_FAILED,
            "could not start",
        ),
    ],
)
def test_run_exits_with_a_documented_code_and_one_sentence(tmp_path, settings, code, sentence):
    done = _run(tmp_path, {"BRIDGE_HTTP__PORT": "0", **settings})
    assert done.returncode == code, done.stderr
    assert sentence in done.stderr
    assert "eA==" not in done.stderr + done.stdout  # no secret echoed
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("iot-bridge run:"), done.stderr
