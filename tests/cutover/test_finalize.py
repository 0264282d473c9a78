"""Finalizing after the soak: the AWS side retired the reversible way, and restored.

The stand-ins, the daemon and a two-device fleet running the agent; AWS is checked with
boto3, the device on Azure through the emulator's registry and the agent itself.
"""

import asyncio

import pytest
from typer.testing import CliRunner

from bridge.cli import app
from bridge.core.machine import State
from bridge_sim.fleet import Fleet
from tests.cutover.conftest import iot_client, until
from tests.cutover.test_waves import _all_in, _cli, _daemon, _settings

pytestmark = pytest.mark.timeout(300)

ORIGINAL = ("ACTIVE", ["fleet-per-thing"])  # what the fleet registers each thing with


def _certificate(iot, thing):
    [arn] = [p for p in iot.list_thing_principals(thingName=thing)["principals"] if ":cert/" in p]
    status = iot.describe_certificate(certificateId=arn.rsplit("/", 1)[-1])
    policies = [p["policyName"] for p in iot.list_attached_policies(target=arn)["policies"]]
    return status["certificateDescription"]["status"], policies


async def test_a_device_soaked_on_azure_is_finalized_and_its_aws_side_can_be_restored(
    stack, tmp_path
):
    env = stack.env()
    dsn = f"sqlite:///{tmp_path / 'bridge.db'}"
    settings = _settings(dsn)
    settings = settings.model_copy(
        update={
            "cutover": settings.cutover.model_copy(
                update={"soak_seconds": 2.0, "retire_certificates": True}
            )
        }
    )
    iot = iot_client(env)
    async with (
        Fleet(env, tmp_path / "fleet", devices=2, prefix="fz", misbehaving={1: ["reject"]}),
        _daemon(env, settings),
    ):
        assert await asyncio.to_thread(_certificate, iot, "fz-00") == (
            "ACTIVE",
            ["fleet-per-thing"],
        )
        await until(lambda: _all_in(dsn, ["fz-00", "fz-01"], State.MIRRORED), what="mirrored")
        await _cli(dsn, "plan", "w", "--devices", "fz-00,fz-01", "--deadline", "60")
        await _cli(dsn, "start", "w")
        await until(lambda: _all_in(dsn, ["fz-00"], State.FINALIZED), what="fz-00 finalized")
        await until(lambda: _all_in(dsn, ["fz-01"], State.ROLLED_BACK), what="fz-01 back")

        # Retired on AWS, nothing deleted; still on Azure with the same certificate.
        assert await asyncio.to_thread(_certificate, iot, "fz-00") == ("INACTIVE", [])
        assert stack.iothub.registry.twin("fz-00")["connectionState"] == "Connected"
        # The rolled-back device was never finalized: its AWS side is untouched.
        assert await asyncio.to_thread(_certificate, iot, "fz-01") == (
            "ACTIVE",
            ["fleet-per-thing"],
        )

        runner_env = {k: v for k, v in env.items() if not k.startswith("SIM_")}
        result = await asyncio.to_thread(
            CliRunner().invoke,
            app,
            ["cutover", "restore-aws", "fz-00"],
            env=runner_env | {"BRIDGE_STORE__DSN": dsn},
        )
        assert result.exit_code == 0, result.output
        assert "restored 1 certificates of 1 devices" in result.output
        assert await asyncio.to_thread(_certificate, iot, "fz-00") == (
            "ACTIVE",
            ["fleet-per-thing"],
        )

        # A device finalizing never retired cannot be "restored": one clear sentence.
        result = await asyncio.to_thread(
            CliRunner().invoke,
            app,
            ["cutover", "restore-aws", "fz-01"],
            env=runner_env | {"BRIDGE_STORE__DSN": dsn},
        )
        assert result.exit_code == 2, result.output
        assert "fz-01: finalizing retired nothing on AWS" in result.output
