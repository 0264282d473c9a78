"""The mirror on things AWS accepts and IoT Hub twins cannot hold as they are.

Built through boto3 against the AWS stand-in as a user would, checked through Microsoft's
azure-iot-hub SDK (tests/daemon/parity.py).
"""

import asyncio
import contextlib
import json

import aiohttp
from structlog.testing import capture_logs

from bridge.core.store import open_store
from tests.daemon.parity import aws_clients, azure_call
from tests.daemon.test_run import bridge, bridge_settings, until_parity


def _shadow(data, thing, state):
    data.update_thing_shadow(thingName=thing, payload=json.dumps({"state": state}).encode())


async def _until_ready(port):
    url = f"http://127.0.0.1:{port}/readyz"
    async with aiohttp.ClientSession() as client, asyncio.timeout(30):
        while True:
            with contextlib.suppress(aiohttp.ClientError):
                async with client.get(url) as answer:
                    if answer.status == 200:
                        return
            await asyncio.sleep(0.1)


async def test_reported_state_iot_hub_refuses_leaves_the_rest_of_the_device_mirrored(
    stack, tmp_path
):
    # A shadow's 8 KB hold a string over IoT Hub's 4 KB, a name over its 1 KB once
    # percent-encoded, or an empty name. Sent, the relay module's reported patch failed on
    # every retry ("ClientError: Unexpected failure"): the device's syncs backed off for
    # good and never left the outbox. The section is held back with the reason instead,
    # and tags and desired keep mirroring.
    env = stack.env()
    iot, data = aws_clients(env)
    iot.create_thing(thingName="rr-ok")
    _shadow(data, "rr-ok", {"desired": {"a": 1}, "reported": {"a": 2}})
    iot.create_thing(thingName="rr-long")
    _shadow(data, "rr-long", {"desired": {"a": 1}, "reported": {"log": "y" * 5000}})
    iot.create_thing(thingName="rr-name")
    _shadow(data, "rr-name", {"desired": {"a": 1}, "reported": {"$" * 400: 1}})
    iot.create_thing(thingName="rr-empty")
    _shadow(data, "rr-empty", {"desired": {"a": 1}, "reported": {"": 1}})
    settings = bridge_settings(tmp_path)
    async with bridge(env, settings):
        await _until_ready(settings.http.port)
        await until_parity(env, "rr-ok")
        _shadow(data, "rr-long", {"desired": {"a": 2}})
        _shadow(data, "rr-name", {"desired": {"a": 3}})
        _shadow(data, "rr-empty", {"desired": {"a": 4}})
        async with asyncio.timeout(10):
            while True:
                twins = [
                    await asyncio.to_thread(azure_call, env, "get_twin", name)
                    for name in ("rr-long", "rr-name", "rr-empty")
                ]
                if [t.properties.desired.get("a") for t in twins] == [2, 3, 4]:
                    break
                await asyncio.sleep(0.2)
        # Nothing is left waiting: no sync of theirs backs off to be retried.
        async with open_store(settings.store.dsn) as store, asyncio.timeout(10):
            while await store.outbox_size():
                await asyncio.sleep(0.1)
        # Once AWS holds reported state IoT Hub takes, it is mirrored as usual.
        _shadow(data, "rr-long", {"reported": {"log": None, "ok": True}})
        await until_parity(env, "rr-long", timeout=15)


async def test_a_classic_shadow_key_named_shadows_cannot_hold_is_left_out_and_said(stack, tmp_path):
    # Named shadows are namespaced under the twin's `shadows` key; a classic shadow that
    # has a `shadows` key of its own cannot keep it there. It used to vanish silently.
    env = stack.env()
    iot, data = aws_clients(env)
    for name in ("sk-bulk", "sk-live"):
        iot.create_thing(thingName=name)
        _shadow(data, name, {"desired": {"shadows": 2, "a": 1}})
        data.update_thing_shadow(
            thingName=name,
            shadowName="cfg",
            payload=json.dumps({"state": {"desired": {"m": "eco"}}}).encode(),
        )
    settings = bridge_settings(tmp_path)
    with capture_logs() as logs:
        async with bridge(env, settings):
            await until_parity(env, "sk-")
            _shadow(data, "sk-live", {"desired": {"a": 2}})
            async with asyncio.timeout(10):
                while True:
                    twin = await asyncio.to_thread(azure_call, env, "get_twin", "sk-live")
                    if twin.properties.desired.get("a") == 2:
                        break
                    await asyncio.sleep(0.2)
    said = [e for e in logs if e["event"] == "azure.twin_value_left_out"]
    assert {e["device_id"] for e in said} == {"sk-bulk", "sk-live"}
    assert all("'shadows' key" in e["reason"] for e in said)
    assert [e["device_id"] for e in said].count("sk-live") >= 2  # the live write too


async def test_a_device_refused_for_its_size_comes_back_once_aws_shrinks_it(stack, tmp_path):
    # Five named shadows of 7 KB each are fine on AWS (8 KB per shadow) and over IoT Hub's
    # 32 KB of desired in one twin: the device is FAILED with the reason. It used to stay
    # FAILED for good, its twin stale, whatever AWS did next.
    env = stack.env()
    iot, data = aws_clients(env)
    iot.create_thing(thingName="grow-1")
    _shadow(data, "grow-1", {"desired": {"a": 1}})
    settings = bridge_settings(tmp_path)
    bulky = {"desired": {f"p{i}": "d" * 90 for i in range(75)}}
    async with bridge(env, settings):
        await until_parity(env, "grow-")
        for k in range(5):
            payload = json.dumps({"state": bulky}).encode()
            data.update_thing_shadow(thingName="grow-1", shadowName=f"s{k}", payload=payload)
        async with open_store(settings.store.dsn) as store, asyncio.timeout(15):
            while (await store.get_devices(["grow-1"]))["grow-1"].state != "failed":
                await asyncio.sleep(0.1)
            assert "over IoT Hub's 32768" in (await store.get_devices(["grow-1"]))["grow-1"].reason
        for k in range(3):
            data.delete_thing_shadow(thingName="grow-1", shadowName=f"s{k}")
        await until_parity(env, "grow-", timeout=15)
        async with open_store(settings.store.dsn) as store:
            assert (await store.get_devices(["grow-1"]))["grow-1"].state == "mirrored"
