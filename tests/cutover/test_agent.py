"""The reference Python agent against the stand-ins: AWS jobs in, Azure by thumbprint out."""

import asyncio
import json
from pathlib import Path

from bridge.cutover.job import JobDocument
from bridge.firmware.package import build_package
from bridge.x509 import thumbprints
from bridge_sim.fleet import Fleet
from tests.cutover.conftest import iot_client, until


def _register_on_azure(stack, fleet, name):
    """What the mirror does: the device identity with its AWS certificate's thumbprint."""
    cert = (fleet._workdir / name / "cert.pem").read_text()
    _sha1, sha256 = thumbprints(cert)
    body = {
        "authentication": {
            "type": "selfSigned",
            "x509Thumbprint": {"primaryThumbprint": sha256, "secondaryThumbprint": None},
        }
    }
    stack.iothub.registry.put_device(name, body, None)


def _document(env, deadline=60):
    return JobDocument.model_validate(
        {
            "hub": {
                "hostName": env["IOTHUB_HOSTNAME"],
                "gatewayHostName": env["IOTHUB_GATEWAY_HOST"],
            },
            "trustAnchors": ["DigiCert Global Root G2", Path(env["IOTHUB_ROOT_CA"]).read_text()],
            "fallbackDeadlineSeconds": deadline,
        }
    ).wire()


def _execution(iot, job_id, thing):
    return iot.describe_job_execution(jobId=job_id, thingName=thing)["execution"]


async def test_agent_moves_to_azure_before_leaving_aws(stack, tmp_path):
    env = stack.env()
    iot = iot_client(env)
    async with Fleet(
        env, tmp_path / "fleet", devices=1, prefix="ag", telemetry_interval=0
    ) as fleet:
        [device] = fleet.devices.values()
        _register_on_azure(stack, fleet, device.name)
        assert await asyncio.to_thread(device.agent.send_telemetry, {"t": 1}) == "aws"
        arn = iot.describe_thing(thingName=device.name)["thingArn"]
        iot.create_job(jobId="mig-1", targets=[arn], document=json.dumps(_document(env)))
        await until(lambda: device.agent.outcome, what="the agent's outcome")
        assert device.agent.outcome == {"jobId": "mig-1", "status": "SUCCEEDED"}
        twin = stack.iothub.registry.twin(device.name)
        assert twin["connectionState"] == "Connected"
        assert twin["properties"]["reported"]["migration"]["jobId"] == "mig-1"
        await until(
            lambda: _execution(iot, "mig-1", device.name)["status"] == "SUCCEEDED",
            what="the execution to succeed",
        )
        assert await asyncio.to_thread(device.agent.send_telemetry, {"t": 2}) == "azure"
        state = json.loads((tmp_path / "fleet" / device.name / "state.json").read_text())
        assert state["cloud"] == "azure"
        assert state["aws"]["thing_name"] == device.name  # the fallback is kept


async def test_agent_that_cannot_reach_azure_reports_failed_and_stays_on_aws(stack, tmp_path):
    env = stack.env()
    iot = iot_client(env)
    faults = {0: ["azure-unreachable"]}
    async with Fleet(
        env, tmp_path / "fleet", devices=1, prefix="un", misbehaving=faults, telemetry_interval=0
    ) as fleet:
        [device] = fleet.devices.values()
        arn = iot.describe_thing(thingName=device.name)["thingArn"]
        iot.create_job(jobId="mig-2", targets=[arn], document=json.dumps(_document(env, 2)))
        await until(
            lambda: _execution(iot, "mig-2", device.name)["status"] == "FAILED",
            what="the execution to fail",
        )
        details = _execution(iot, "mig-2", device.name)["statusDetails"]["detailsMap"]
        assert details["reason"].startswith("azure unreachable")
        assert await asyncio.to_thread(device.agent.send_telemetry, {"t": 3}) == "aws"


def _artifact(tmp_path, text='print("hello from Azure")\n'):
    """A patched program packaged as `iot-bridge firmware patch --package` does."""
    program = tmp_path / "program"
    program.mkdir()
    (program / "main.py").write_text("print('hello from AWS')\n")
    return build_package(program, {"main.py": text}, tmp_path / "ota.tar.gz")


async def test_agent_installs_the_jobs_firmware_checked_then_moves(stack, tmp_path):
    env = stack.env()
    iot = iot_client(env)
    artifact = _artifact(tmp_path)
    async with Fleet(
        env, tmp_path / "fleet", devices=1, prefix="fw", telemetry_interval=0
    ) as fleet:
        [device] = fleet.devices.values()
        _register_on_azure(stack, fleet, device.name)
        arn = iot.describe_thing(thingName=device.name)["thingArn"]
        document = _document(env) | {"firmware": artifact}
        iot.create_job(jobId="mig-fw", targets=[arn], document=json.dumps(document))
        await until(lambda: device.agent.outcome, what="the agent's outcome")
        assert device.agent.outcome == {"jobId": "mig-fw", "status": "SUCCEEDED"}
        migration = stack.iothub.registry.twin(device.name)["properties"]["reported"]["migration"]
        assert migration["firmware"] == artifact["sha256"]
        current = tmp_path / "fleet" / device.name / "firmware" / "current"
        assert current.resolve().name == artifact["sha256"]
        assert (current / "main.py").read_text() == 'print("hello from Azure")\n'


async def test_firmware_that_does_not_match_its_checksum_fails_the_job_and_stays_on_aws(
    stack, tmp_path
):
    env = stack.env()
    iot = iot_client(env)
    artifact = _artifact(tmp_path) | {"sha256": "0" * 64}
    async with Fleet(
        env, tmp_path / "fleet", devices=1, prefix="fx", telemetry_interval=0
    ) as fleet:
        [device] = fleet.devices.values()
        _register_on_azure(stack, fleet, device.name)
        arn = iot.describe_thing(thingName=device.name)["thingArn"]
        document = _document(env) | {"firmware": artifact}
        iot.create_job(jobId="mig-fx", targets=[arn], document=json.dumps(document))
        await until(
            lambda: _execution(iot, "mig-fx", device.name)["status"] == "FAILED",
            what="the execution to fail",
        )
        reason = _execution(iot, "mig-fx", device.name)["statusDetails"]["detailsMap"]["reason"]
        assert reason.startswith("firmware not installed: firmware SHA-256 is ")
        assert not (tmp_path / "fleet" / device.name / "firmware" / "current").exists()
        assert await asyncio.to_thread(device.agent.send_telemetry, {"t": 4}) == "aws"
