"""The reverse path end to end: a cut-over device on the IoT Hub emulator (azure-iot-device,
its AWS certificate as an X.509 thumbprint) reports and sends telemetry; the daemon carries
both back to the AWS stand-in, read with boto3 (shadows) and a plain MQTT subscriber."""

import asyncio
import contextlib
import json
import secrets

import pytest
from azure.iot.hub.models import Twin, TwinProperties

from bridge.config import CloudSettings, RelaySettings, ReverseSettings
from bridge.core.store import open_store
from bridge.daemon.app import RunOptions, run_daemon
from bridge.metrics import Metrics
from bridge_sim.stack import sim_stack
from tests.daemon.parity import aws_clients, registry_manager
from tests.daemon.test_run import bridge_settings, until_parity
from tests.relay.fleet import captured, cut_over, make_fleet
from tests.reverse.helpers import Subscriber, azure_device, send, until_mirrored

pytestmark = pytest.mark.timeout(240)


@pytest.fixture
async def stack(tmp_path):
    async with sim_stack(tmp_path / "sim") as running:
        yield running


@contextlib.asynccontextmanager
async def daemon(env, settings):
    metrics = Metrics.create()
    task = asyncio.create_task(
        run_daemon(CloudSettings(**env), settings, RunOptions(), metrics=metrics)
    )
    try:
        yield metrics
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def reverse_settings(tmp_path, **reverse):
    return bridge_settings(tmp_path).model_copy(
        update={
            "reverse": ReverseSettings(
                enabled=True,
                topic_template="dt/{device}",
                checkpoint_container=f"reverse-{secrets.token_hex(3)}",
                state_ttl=0,
                **reverse,
            )
        }
    )


def sample(metrics, name, **labels):
    return metrics.registry.get_sample_value(name, labels) or 0


def shadow(data, thing, name=None):
    kwargs = {"thingName": thing, **({"shadowName": name} if name else {})}
    return json.loads(data.get_thing_shadow(**kwargs)["payload"].read())


async def until_shadow(data, thing, check, name=None, timeout=60.0):
    """Poll the AWS shadow (boto3) until `check(document)` holds; return the document."""
    async with asyncio.timeout(timeout):
        while True:
            with contextlib.suppress(data.exceptions.ResourceNotFoundException):
                document = await asyncio.to_thread(shadow, data, thing, name)
                if check(document):
                    return document
            await asyncio.sleep(0.2)


async def test_a_cut_over_device_reports_and_telemetry_reach_aws(stack, tmp_path):
    env = stack.env()
    iot, data = aws_clients(env)
    things = await asyncio.to_thread(make_fleet, stack, iot, ["rev-1"])
    # The relay runs too, subscribed to the topics the reverse path publishes on: what it
    # gets back from AWS must not come into Azure again.
    relay = RelaySettings(enabled=True, topics=["dt/+=2", "tele/+/#=2"], state_ttl=0)
    settings = reverse_settings(tmp_path).model_copy(update={"relay": relay})
    async with (
        daemon(env, settings) as metrics,
        Subscriber(env, ["dt/#", "tele/#"], f"iot-bridge-sub-{secrets.token_hex(3)}") as aws,
    ):
        await until_parity(env, "rev-")
        await until_mirrored(settings.store.dsn, "rev-1")
        await cut_over(settings.store.dsn, "rev-1")
        async with azure_device(env, things["rev-1"], tmp_path / "device") as device:
            await device.patch_twin_reported_properties(
                {"temp": 21.5, "shadows": {"cfg": {"mode": "eco"}}}
            )
            for seq in range(20):
                await send(device, {"seq": seq})
            await send(device, {"seq": 20}, aws_topic="tele/rev-1/power")
            received = await aws.until(21)
        reported = await until_shadow(
            data, "rev-1", lambda d: d["state"].get("reported", {}).get("temp") == 21.5
        )
        named = await until_shadow(
            data, "rev-1", lambda d: bool(d["state"].get("reported")), name="cfg"
        )
        # The relay saw all 21 republished messages and relayed none (the device is cut over).
        async with asyncio.timeout(60):
            while sample(metrics, "bridge_relay_messages_total", outcome="skipped") < 21:
                await asyncio.sleep(0.05)
        on_azure = await captured(stack, "rev-1")
    assert [event["moduleId"] for event in on_azure] == [None] * 21
    assert sample(metrics, "bridge_relay_messages_total", outcome="sent") == 0
    assert sample(metrics, "bridge_reverse_messages_total", outcome="republished") == 21
    assert "shadows" not in reported["state"]["reported"]
    assert named["state"]["reported"] == {"mode": "eco"}
    # Once per message, in order, on the topic each used before (template or awsTopic).
    assert received == [("dt/rev-1", {"seq": n}) for n in range(20)] + [
        ("tele/rev-1/power", {"seq": 20})
    ]


async def until_mirror_folded(dsn, device_id, check):
    """Wait until the mirror's view satisfies `check` and it has nothing left to write."""
    async with open_store(dsn) as store, asyncio.timeout(60):
        while True:
            view = (await store.get_views([device_id]))[device_id]
            if check(view) and not await store.outbox_size():
                return
            await asyncio.sleep(0.1)


@pytest.mark.parametrize(
    ("patch", "shadow_name", "expected"),
    [
        ({"fan": 3}, None, lambda desired: desired.get("fan") == 3),
        ({"shadows": {"cfg": {"x": 1}}}, "cfg", lambda desired: desired == {"x": 1}),
    ],
    ids=["classic", "named"],
)
async def test_an_azure_desired_change_reaches_aws_and_does_not_bounce(
    stack, tmp_path, patch, shadow_name, expected
):
    env = stack.env()
    iot, data = aws_clients(env)
    await asyncio.to_thread(make_fleet, stack, iot, ["rev-2"])
    await asyncio.to_thread(
        data.update_thing_shadow,
        thingName="rev-2",
        payload=json.dumps({"state": {"desired": {"fan": 1}}}),
    )
    settings = reverse_settings(tmp_path)
    manager = registry_manager(env)
    async with daemon(env, settings) as metrics:
        await until_parity(env, "rev-")
        await until_mirrored(settings.store.dsn, "rev-2")
        await cut_over(settings.store.dsn, "rev-2")
        twin = Twin(properties=TwinProperties(desired=patch))
        patched = await asyncio.to_thread(manager.update_twin, "rev-2", twin, "*")
        twin_version = patched.properties.desired["$version"]
        written = await until_shadow(
            data, "rev-2", lambda d: expected(d["state"].get("desired", {})), name=shadow_name
        )
        # The mirror folds AWS's announcement of that write and finishes...
        name = shadow_name or ""
        await until_mirror_folded(
            settings.store.dsn,
            "rev-2",
            lambda view: name in view.shadows and expected(view.shadows[name].desired),
        )
        # ...without writing the twin back, so nothing returns to AWS either.
        twin = await asyncio.to_thread(manager.get_twin, "rev-2")
        assert twin.properties.desired["$version"] == twin_version
        again = await asyncio.to_thread(shadow, data, "rev-2", shadow_name)
        assert again["version"] == written["version"]
        writes = metrics.registry.get_sample_value(
            "bridge_reverse_twin_writes_total", {"section": "desired", "outcome": "written"}
        )
        assert writes == 1
