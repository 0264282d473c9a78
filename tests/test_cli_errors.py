"""Every command answers a bad setting or input with one sentence and a documented code.

The commands run as an operator runs them: a child process with only the env file given,
so nothing from this test process (credentials, settings) leaks in.
"""

import os
import socket
import subprocess
import sys

import pytest

from bridge.exit_codes import ExitCode

SCRUBBED = ("AWS_", "IOTHUB_", "BRIDGE_", "AZURE_")


def closed_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def iot_bridge(tmp_path, *args, settings=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith(SCRUBBED)}
    # No credentials from files or the instance metadata service: only the env file counts.
    env |= {
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    command = [sys.executable, "-m", "bridge", *map(str, args)]
    if settings is not None:
        env_file = tmp_path / "bad.env"
        env_file.write_text("".join(f"{k}={v}\n" for k, v in settings.items()))
        command += ["--env-file", str(env_file)]
    return subprocess.run(  # noqa: S603 - our own interpreter and CLI
        command, capture_output=True, text=True, timeout=120, check=False, cwd=tmp_path, env=env
    )


CREDENTIALS = {"AWS_ACCESS_KEY_ID": "AKIAEXAMPLE", "AWS_SECRET_ACCESS_KEY": "s3cr3t-value"}

CASES = {
    "discover without credentials": (
        ["discover", "-o", "inv.json"],
        {"AWS_REGION": "eu-west-1", "AWS_ENDPOINT_URL": "http://127.0.0.1:9"},
        ExitCode.CONFIG_ERROR,
        "no AWS credentials found: set AWS_ACCESS_KEY_ID",
    ),
    "discover with an unreachable endpoint": (
        ["discover", "-o", "inv.json"],
        {**CREDENTIALS, "AWS_ENDPOINT_URL": "http://127.0.0.1:{port}"},
        ExitCode.STARTUP_FAILED,
        "cannot reach AWS at http://127.0.0.1:",
    ),
    "config show with a wrong setting": (
        ["config", "show"],
        {"BRIDGE_MIRROR__CONCURRENCY": "lots"},
        ExitCode.CONFIG_ERROR,
        "the settings are not valid: mirror.concurrency",
    ),
    "run with a wrong setting": (
        ["run"],
        {"BRIDGE_IOTHUB__TIER": "S9"},
        ExitCode.CONFIG_ERROR,
        "the settings are not valid: iothub.tier",
    ),
    "run without IoT Hub": (
        ["run"],
        {**CREDENTIALS, "BRIDGE_HTTP__PORT": "0"},
        ExitCode.CONFIG_ERROR,
        "IOTHUB_CONNECTION_STRING is not set",
    ),
    "run with a malformed connection string": (
        ["run"],
        {"IOTHUB_CONNECTION_STRING": "HostName=h;SharedAccessKey=x", "BRIDGE_HTTP__PORT": "0"},
        ExitCode.CONFIG_ERROR,
        "lacks SharedAccessKeyName",
    ),
    "status without a store": (
        ["status"],
        {"BRIDGE_STORE__DSN": "sqlite:///never-made.db"},
        ExitCode.STARTUP_FAILED,
        "no store at ",
    ),
    "status with an unreachable PostgreSQL": (
        ["status"],
        {"BRIDGE_STORE__DSN": "postgresql://bridge@127.0.0.1:{port}/bridge"},
        ExitCode.STARTUP_FAILED,
        "cannot open PostgreSQL store",
    ),
    "plan without an inventory": (
        ["plan", "missing.json"],
        None,
        ExitCode.STARTUP_FAILED,
        "cannot read inventory missing.json",
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_a_bad_setting_gets_one_sentence_and_its_exit_code(tmp_path, case):
    args, settings, code, sentence = CASES[case]
    port = closed_port()
    if settings is not None:
        settings = {k: v.format(port=port) for k, v in settings.items()}
    done = iot_bridge(tmp_path, *args, settings=settings)
    assert done.returncode == code, done.stderr
    lines = done.stderr.strip().splitlines()
    # A traceback may sit in a JSON log line's field; never printed as such.
    assert not [line for line in lines if line.startswith("Traceback")], done.stderr
    assert sentence in lines[-1], done.stderr
    assert "s3cr3t-value" not in done.stderr + done.stdout  # no secret is echoed


def test_status_never_creates_a_store_where_none_was(tmp_path):
    done = iot_bridge(tmp_path, "status", settings={"BRIDGE_STORE__DSN": "sqlite:///x.db"})
    assert done.returncode == ExitCode.STARTUP_FAILED
    assert str(tmp_path / "x.db") in done.stderr
    assert not (tmp_path / "x.db").exists()


def test_debug_shows_the_traceback_instead(tmp_path):
    settings = {"BRIDGE_STORE__DSN": "sqlite:///never-made.db"}
    done = iot_bridge(tmp_path, "--debug", "status", settings=settings)
    assert done.returncode != 0
    assert "Traceback" in done.stderr or "StoreError" in done.stderr
