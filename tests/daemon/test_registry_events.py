"""`iot-bridge run` checks that AWS publishes the registry events the mirror lives on."""

import asyncio
import json

import aiohttp
import pytest

from bridge.config import CloudSettings
from bridge.daemon.app import RunOptions, build_daemon
from bridge.exit_codes import ExitCode
from bridge.metrics import Metrics
from bridge_sim.stack import sim_stack
from tests.daemon.parity import aws_clients
from tests.daemon.test_run import bridge, bridge_settings, until_parity


@pytest.fixture
async def new_account(tmp_path):
    async with sim_stack(tmp_path / "sim", registry_events=False) as running:
        yield running


async def test_run_refuses_to_start_while_registry_events_are_off(new_account, tmp_path):
    daemon = build_daemon(
        CloudSettings(**new_account.env()),
        bridge_settings(tmp_path),
        RunOptions(),
        metrics=Metrics.create(),
    )
    assert await asyncio.wait_for(daemon.serve(), 60) is ExitCode.STARTUP_FAILED
    message = str(daemon.failure)
    assert "THING, THING_GROUP, THING_GROUP_MEMBERSHIP" in message
    assert "aws iot update-event-configurations --event-configurations" in message
    assert "--enable-registry-events" in message
    iot, data = aws_clients(new_account.env())
    described = iot.describe_event_configurations()["eventConfigurations"]
    iot.close()
    data.close()
    assert described["THING"] == {"Enabled": False}  # refusing changes nothing on AWS


async def test_with_the_option_the_bridge_turns_them_on_and_mirrors_live(new_account, tmp_path):
    env = new_account.env()
    iot, data = aws_clients(env)
    settings = bridge_settings(tmp_path, enable_registry_events=True)
    async with bridge(env, settings):
        url = f"http://127.0.0.1:{settings.http.port}/readyz"
        async with asyncio.timeout(60):
            while True:
                try:
                    async with aiohttp.ClientSession() as client, client.get(url) as answer:
                        checks = (await answer.json())["checks"]
                        if answer.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.2)
        assert checks["mirror.registry_events"]["detail"].startswith(
            "turned on by the bridge at start: THING"
        )
        described = iot.describe_event_configurations()["eventConfigurations"]
        assert described["THING_GROUP_MEMBERSHIP"] == {"Enabled": True}
        assert described["JOB"] == {"Enabled": False}  # only what the mirror needs
        # Live, through the events just turned on: a new thing and its group.
        iot.create_thing_group(thingGroupName="late")
        iot.create_thing(thingName="ev-1", attributePayload={"attributes": {"a": "1"}})
        iot.add_thing_to_thing_group(thingGroupName="late", thingName="ev-1")
        data.update_thing_shadow(
            thingName="ev-1", payload=json.dumps({"state": {"desired": {"x": 1}}})
        )
        await until_parity(env, "ev-")
    iot.close()
    data.close()
