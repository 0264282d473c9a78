"""`iot-bridge run` as a child process (so SIGKILL is a real kill -9), and its env file."""

import os
import secrets
import signal
import subprocess
import sys

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
