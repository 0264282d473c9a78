"""The simulated fleet over child processes: the same accounting as in one process, and a
child that dies is reported, never taken for a quiet device."""

import json
import os
import signal
from pathlib import Path

import boto3
import pytest

from bridge_sim.errors import SimulatorError
from bridge_sim.fleet import Fleet, default_processes
from tests.cutover.conftest import iot_client, until
from tests.cutover.test_agent import _document, _register_on_azure


def _data(env):
    return boto3.client(
        "iot-data",
        region_name=env["AWS_REGION"],
        endpoint_url=env["AWS_ENDPOINT_URL"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
    )


def _reported(stack, name):
    return (stack.aws.shadows.get(name) or {}).get("state", {}).get("reported", {})


def test_large_fleets_get_a_process_per_share_of_devices_small_ones_none():
    assert default_processes(50) == 1
    assert default_processes(126) == 2
    assert 1 < default_processes(1000) <= 4 * (os.cpu_count() or 1)


async def test_a_fleet_over_two_processes_moves_reports_and_answers_desired(stack, tmp_path):
    env = stack.env()
    iot, data = iot_client(env), _data(env)
    async with Fleet(
        env, tmp_path / "fleet", devices=3, prefix="mp", processes=2,
        telemetry_interval=0.2, shadow_interval=0.5,
    ) as fleet:  # fmt: skip
        assert {d.process for d in fleet.devices.values()} == {1, 2}
        assert all(d.agent is None for d in fleet.devices.values())  # in the children
        # A desired change on AWS is answered there, for the keys the device knows.
        desired = {"state": {"desired": {"setpoint": 21.5, "unknown": 1}}}
        data.update_thing_shadow(thingName="mp-01", payload=json.dumps(desired).encode())
        await until(lambda: _reported(stack, "mp-01").get("setpoint") == 21.5, what="answer")
        assert "unknown" not in _reported(stack, "mp-01")
        # One device moves to Azure in its child, then answers desired changes on its twin.
        _register_on_azure(stack, fleet, "mp-00")
        arn = iot.describe_thing(thingName="mp-00")["thingArn"]
        iot.create_job(jobId="mig-mp", targets=[arn], document=json.dumps(_document(env)))

        def reported_on_azure():
            return stack.iothub.registry.twin("mp-00")["properties"]["reported"]

        await until(lambda: "migration" in reported_on_azure(), what="mp-00 on Azure")
        patch = {"properties": {"desired": {"mode": "eco"}}}
        stack.iothub.registry.update_twin("mp-00", patch, None)
        await until(lambda: reported_on_azure().get("mode") == "eco", what="answer on Azure")
        await until(lambda: "temperature" in reported_on_azure(), what="a report on Azure")
        await fleet.stop_telemetry()
        moved = fleet.devices["mp-00"]
        assert moved.cloud == "azure"
        assert moved.outcome == {"jobId": "mig-mp", "status": "SUCCEEDED"}
        assert moved.sent["aws"] > 0
        assert moved.sent["azure"] > 0
        assert moved.shadow["answered/azure"] >= 1
        for device in fleet.devices.values():  # every reading counted here, in order
            assert [r.seq for r in device.readings] == list(range(1, len(device.readings) + 1))
            assert device.shadow["reported/aws"] + device.shadow["reported/azure"] > 0
        assert fleet.devices["mp-02"].cloud == "aws"


async def test_a_child_that_dies_is_reported_and_the_others_are_stopped(stack, tmp_path):
    env = stack.env()
    fleet = Fleet(
        env, tmp_path / "fleet", devices=2, prefix="kd", processes=2, telemetry_interval=0.2
    )
    pids = []

    async def lose_a_child():
        async with fleet:
            pids.extend(child._process.pid for child in fleet._children)
            os.kill(pids[0], signal.SIGKILL)
            await until(lambda: fleet.failures, what="the death reported")
            await fleet.stop_telemetry()  # raises: the dead child's devices stopped counting

    with pytest.raises(
        SimulatorError, match=r"fleet process 1 \(kd-00..kd-00\) exited with code -9"
    ):
        await lose_a_child()
    await until(lambda: not _alive(pids[1]), what="the other child gone")


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone for good; only the reaper (asyncio's child watcher) clears it.
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
