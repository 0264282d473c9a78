"""`iot-bridge sim up` as an operator runs it: a child process, an env file, Ctrl-C."""

import asyncio
import re
import signal
import sys
from pathlib import Path

import boto3
from dotenv import dotenv_values

REQUIRED = {
    "AWS_REGION",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_ENDPOINT_URL",
    "AWS_IOT_DATA_ENDPOINT",
    "AWS_IOT_ROOT_CA",
    "AWS_IOT_BRIDGE_CERT",
    "AWS_IOT_BRIDGE_KEY",
    "IOTHUB_CONNECTION_STRING",
    "IOTHUB_EVENTHUB_CONNECTION_STRING",
    "IOTHUB_ROOT_CA",
    "IOTHUB_GATEWAY_HOST",
    "AZURE_STORAGE_CONNECTION_STRING",
}


async def test_sim_up_writes_settings_serves_them_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    env_file = tmp_path / "sim.env"
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bridge", "sim", "up",
        "--env-file", str(env_file), "--state-dir", str(tmp_path / "state"), "--things", "12",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    try:
        async with asyncio.timeout(90):
            while not env_file.exists():
                assert process.returncode is None, await process.stdout.read()  # type: ignore[union-attr]
                await asyncio.sleep(0.2)
        assert env_file.stat().st_mode & 0o777 == 0o600
        values = dotenv_values(env_file)
        assert values.keys() >= REQUIRED
        iot = boto3.client(
            "iot",
            endpoint_url=values["AWS_ENDPOINT_URL"],
            region_name=values["AWS_REGION"],
            aws_access_key_id=values["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=values["AWS_SECRET_ACCESS_KEY"],
        )
        things = await asyncio.to_thread(iot.list_things, maxResults=100)
        assert len(things["things"]) == 12 + 5  # the estate's legacy things come on top
        assert Path(str(values["AWS_IOT_BRIDGE_CERT"])).exists()
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
        output = await asyncio.wait_for(process.stdout.read(), 30)  # type: ignore[union-attr]
        code = await asyncio.wait_for(process.wait(), 30)
    assert code == 0, output.decode()
    assert re.search(rb"AWS_SECRET_ACCESS_KEY\s+\*{10}", output)
    assert re.search(rb"IOTHUB_CONNECTION_STRING\s+\*{10}", output)
    assert b"standin-secret-access-key" not in output
    assert b"SharedAccessKey=" not in output, "connection strings hold keys: never printed"
