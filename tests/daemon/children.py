"""`iot-bridge run` as a child process (so SIGKILL is a real kill -9), and its env file."""

import asyncio
import os
import secrets
import signal
import subprocess
import sys

import aiohttp

from tests.daemon.test_run import free_port


def write_bridge_env(tmp_path, env, dsn):
    settings = {
        **env,
        "BRIDGE_STORE__DSN": dsn,
        "BRIDGE_HTTP__PORT": str(free_port()),
        "BRIDGE_MIRROR__CLIENT_ID": f"iot-bridge-{secrets.token_hex(3)}",
        "BRIDGE_MIRROR__AWS_RATE_SCALE": "0",
        "BRIDGE_MIRROR__RECONCILE_INTERVAL": "0",
        "BRIDGE_LOG_LEVEL": os.environ.get("FAULTS_LOG_LEVEL", "WARNING"),  # INFO to diagnose
    }
    path = tmp_path / "bridge.env"
    path.write_text("".join(f"{k}={v}\n" for k, v in settings.items()))
    return path


class Daemon:
    """`iot-bridge run` as a child process that can be killed and started again."""

    def __init__(self, env_file, log):
        self.env_file = env_file
        self.log = log
        self.process = None
        self.port = next(
            int(line.split("=", 1)[1])
            for line in env_file.read_text().splitlines()
            if line.startswith("BRIDGE_HTTP__PORT=")
        )

    async def until_live(self, timeout=120):
        """Until the daemon answers /livez: its services have started (imports alone take
        seconds on a busy machine, and a kill before that would test nothing)."""
        await self._until_ok("/livez", timeout)

    async def until_ready(self, timeout=300):
        """Until /readyz says ready: the initial sync is done, live changes are mirrored."""
        await self._until_ok("/readyz", timeout)

    async def _until_ok(self, path, timeout):
        async with asyncio.timeout(timeout), aiohttp.ClientSession() as client:
            while True:
                assert self.process.poll() is None, f"the daemon exited before {path} held"
                try:
                    async with client.get(f"http://127.0.0.1:{self.port}{path}") as answer:
                        if answer.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.05)

    def start(self):
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and CLI
            [
                sys.executable,
                "-c",
                "from bridge.cli import main; main()",
                "run",
                "--env-file",
                str(self.env_file),
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env={
                k: v
                for k, v in os.environ.items()
                if not k.startswith(("AWS_", "IOTHUB_", "BRIDGE_"))
            },
        )

    def kill(self):
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.process.returncode
