"""Choosing a wave's devices by fleet-index query, and its exponential rollout, against the
AWS stand-in: what AWS's own SearchIndex and CreateJob (through boto3) make of them."""

import asyncio
import json

from typer.testing import CliRunner

from bridge.cli import app
from bridge.core.store import open_store
from bridge.cutover.operator import wave_status
from bridge.cutover.wave import WaveSpec
from tests.cutover.conftest import iot_client

SITES = {"q-1": "lyon", "q-2": "paris", "q-3": "lyon", "q-4": "lyon"}


async def test_a_fleet_index_query_chooses_the_wave_and_aws_takes_its_ramp(stack, tmp_path):
    env = stack.env()
    iot = iot_client(env)
    iot.update_indexing_configuration(thingIndexingConfiguration={"thingIndexingMode": "REGISTRY"})
    for name, site in SITES.items():
        iot.create_thing(thingName=name, attributePayload={"attributes": {"site": site}})
    dsn = f"sqlite:///{tmp_path / 'bridge.db'}"
    async with open_store(dsn) as store:
        for name in SITES:
            await store.add_device(name)  # as the mirror would have
    cli_env = {k: v for k, v in env.items() if not k.startswith("SIM_")}
    result = await asyncio.to_thread(
        CliRunner().invoke,
        app,
        [
            "cutover",
            "plan",
            "lyon",
            "--query",
            "attributes.site:lyon",
            "--base-per-minute",
            "2",
            "--max-per-minute",
            "8",
        ],
        env=cli_env | {"BRIDGE_STORE__DSN": dsn},
    )
    assert result.exit_code == 0, result.output
    async with open_store(dsn) as store:
        [wave] = await wave_status(store)
    assert [d["device_id"] for d in wave["devices"]] == ["q-1", "q-3", "q-4"]
    assert wave["spec"]["query"] == "attributes.site:lyon"

    # The job the daemon would send: AWS keeps the ramp as given.
    spec = WaveSpec.model_validate(wave["spec"])
    arns = [iot.describe_thing(thingName=d)["thingArn"] for d in spec.devices]
    iot.create_job(jobId="ramp", targets=arns, document=json.dumps({"v": 1}), **spec.job_settings())
    rollout = iot.describe_job(jobId="ramp")["job"]["jobExecutionsRolloutConfig"]
    assert rollout["maximumPerMinute"] == 8
    assert rollout["exponentialRate"]["baseRatePerMinute"] == 2
    assert rollout["exponentialRate"]["rateIncreaseCriteria"] == {"numberOfNotifiedThings": 10}

    # A query AWS cannot run is the operator's to fix: one sentence, the usage code.
    result = await asyncio.to_thread(
        CliRunner().invoke,
        app,
        ["cutover", "plan", "bad", "--query", "attributes.site:("],
        env=cli_env | {"BRIDGE_STORE__DSN": dsn},
    )
    assert result.exit_code == 2, result.output
    assert "AWS refused the fleet-index query 'attributes.site:('" in result.output


def test_the_exponential_estimate_counts_the_minutes_of_the_ramp():
    def spec(devices, **ramp):
        return WaveSpec(devices=[f"d{i}" for i in range(devices)], **ramp)

    # constant: 60 a minute, the 61st device waits a minute
    assert spec(60).rollout_seconds() == 0
    assert spec(61).rollout_seconds() == 60
    # 1, then 2, then 4 a minute (doubling after each device notified), capped at 4
    ramp = {"base_per_minute": 1, "increment_factor": 2.0, "increase_every": 1}
    assert spec(1, max_per_minute=4, **ramp).rollout_seconds() == 0
    assert spec(3, max_per_minute=4, **ramp).rollout_seconds() == 60
    assert spec(7, max_per_minute=4, **ramp).rollout_seconds() == 120
    assert spec(11, max_per_minute=4, **ramp).rollout_seconds() == 180  # 1+2+4+4
