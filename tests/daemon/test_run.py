"""`iot-bridge run` end to end: AWS stand-in (moto + mosquitto mTLS) to the IoT Hub emulator.

Changes are made with boto3 (control plane and shadow REST API) and checked through
Microsoft's azure-iot-hub SDK by an independent parity check (tests/daemon/parity.py).
"""

import asyncio
import contextlib
import json
import secrets

import aiohttp
import pytest
from azure.iot.hub.models import Twin, TwinProperties

from bridge.azure.twin_map import twin_document
from bridge.config import CloudSettings, Settings
from bridge.core.view import DeviceView
from bridge.daemon.app import RunOptions, run_daemon
from bridge.metrics import Metrics
from bridge_sim.ports import free_port
from tests.daemon.parity import aws_clients, azure_call, differences


def bridge_settings(tmp_path, iothub=None, **mirror):
    return Settings(
        iothub=iothub or {},
        store={"dsn": f"sqlite:///{tmp_path / 'bridge.db'}"},
        http={"port": free_port()},
        mirror={
            "client_id": f"iot-bridge-{secrets.token_hex(3)}",
            "aws_rate_scale": 0,
            "reconcile_interval": 0,
            **mirror,
        },
    )


@contextlib.asynccontextmanager
async def bridge(env, settings, options=None):
    metrics = Metrics.create()
    task = asyncio.create_task(
        run_daemon(CloudSettings(**env), settings, options or RunOptions(), metrics=metrics)
    )
    try:
        yield metrics
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def until_parity(env, prefix, timeout=30.0):
    """Poll the independent parity check until AWS and Azure match; fail with the diff."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        found = await asyncio.to_thread(differences, env, prefix)
        if not found:
            return
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"AWS and Azure still differ: {json.dumps(found, indent=1)[:3000]}")
        await asyncio.sleep(0.3)


def _edit_twin_by_hand(env, device_id):
    twin = azure_call(env, "get_twin", device_id)
    patch = Twin(tags={"owner": "someone"}, properties=TwinProperties(desired={"x": 99}))
    azure_call(env, "update_twin", device_id, patch, twin.etag)


def _shadow(data, thing, desired, name=None, section="desired"):
    body = json.dumps({"state": {section: desired}}).encode()
    kwargs = {"thingName": thing, "payload": body} | ({"shadowName": name} if name else {})
    data.update_thing_shadow(**kwargs)


async def test_initial_sync_then_every_kind_of_live_change_reaches_the_twin(stack, tmp_path):
    env = stack.env()
    iot, data = aws_clients(env)
    iot.create_thing_type(thingTypeName="meter")
    iot.create_thing_group(thingGroupName="USA")
    iot.create_thing_group(thingGroupName="New York", parentGroupName="USA")
    iot.create_thing(
        thingName="e2e-1", thingTypeName="meter", attributePayload={"attributes": {"site": "a"}}
    )
    iot.add_thing_to_thing_group(thingGroupName="New York", thingName="e2e-1")
    _shadow(data, "e2e-1", {"rate": 5, "odd.key": {"a b": 1}})
    _shadow(data, "e2e-1", {"mode": "eco"}, name="config")
    _shadow(data, "e2e-1", {"temp": 21.5, "fw": {"v": "1.0"}}, section="reported")
    iot.create_thing(thingName="e2e-gone")

    async with bridge(env, bridge_settings(tmp_path)):
        await until_parity(env, "e2e-")
        # Live: create, attributes, type, membership, shadows (classic, named, deleted), delete.
        iot.create_thing(thingName="e2e-2", attributePayload={"attributes": {"floor": "3"}})
        iot.update_thing(
            thingName="e2e-1", attributePayload={"attributes": {"site": "b", "new": "x"}}
        )
        iot.update_thing(thingName="e2e-2", thingTypeName="meter")
        iot.create_thing_group(thingGroupName="Brooklyn", parentGroupName="New York")
        iot.add_thing_to_thing_group(thingGroupName="Brooklyn", thingName="e2e-2")
        iot.remove_thing_from_thing_group(thingGroupName="New York", thingName="e2e-1")
        iot.add_thing_to_thing_group(thingGroupName="USA", thingName="e2e-1")
        _shadow(data, "e2e-1", {"rate": 7, "odd.key": None})
        _shadow(data, "e2e-2", {"on": True}, name="power")
        _shadow(data, "e2e-2", {"on": False}, name="power", section="reported")
        _shadow(data, "e2e-1", {"temp": 22.0, "fw": None}, section="reported")
        data.delete_thing_shadow(thingName="e2e-1", shadowName="config")
        iot.delete_thing(thingName="e2e-gone")
        await until_parity(env, "e2e-")
        twin = await asyncio.to_thread(azure_call, env, "get_twin", "e2e-2")
        assert twin.tags["aws"]["groups"] == ["USA/New York/Brooklyn"]
        assert twin.properties.desired["shadows"] == {"power": {"on": True}}
        module = await asyncio.to_thread(azure_call, env, "get_module_twin", "e2e-1", "aws-bridge")
        assert {k: v for k, v in module.properties.reported.items() if k[0] != "$"} == {
            "temp": 22.0
        }


async def test_deleted_things_are_disabled_when_the_policy_says_so(stack, tmp_path):
    env = stack.env()
    iot, _ = aws_clients(env)
    iot.create_thing(thingName="keep-1")
    async with bridge(env, bridge_settings(tmp_path, delete_policy="disable")):
        await until_parity(env, "keep-")
        iot.delete_thing(thingName="keep-1")
        for _ in range(100):
            device = await asyncio.to_thread(azure_call, env, "get_device", "keep-1")
            if device.status == "disabled":
                break
            await asyncio.sleep(0.1)
        assert device.status == "disabled"


async def test_health_and_metrics_endpoints(stack, tmp_path):
    env = stack.env()
    iot, data = aws_clients(env)
    iot.create_thing(thingName="m-1")
    iot.create_thing(thingName="m-2")
    settings = bridge_settings(tmp_path)
    async with bridge(env, settings):
        await until_parity(env, "m-")
        _shadow(data, "m-1", {"x": 1})
        await until_parity(env, "m-")
        # Someone edits a twin by hand on Azure; the next AWS change still wins, and the
        # bridge says it overwrote a change made outside it.
        await asyncio.to_thread(_edit_twin_by_hand, env, "m-1")
        _shadow(data, "m-1", {"x": 2})
        await until_parity(env, "m-")
        base = f"http://127.0.0.1:{settings.http.port}"
        async with aiohttp.ClientSession(base) as client:
            async with client.get("/livez") as live:
                assert live.status == 200
            async with client.get("/readyz") as ready:
                body = await ready.json()
                # Which signal finds cutover arrivals depends on whether the endpoint's
                # partitions were claimed yet; either one holds (tests/cutover/test_signals).
                signal = body["checks"].pop("cutover.arrival_signal")
                assert signal["ok"], signal
                assert signal["detail"].startswith(("connection-state events", "twin queries"))
                assert body == {
                    "ready": True,
                    "checks": {
                        "mirror.aws_connected": {"ok": True},
                        "mirror.registry_events": {"ok": True},
                        "mirror.initial_sync": {"ok": True},
                        "mirror.store": {"ok": True},
                        "cutover.store": {"ok": True},
                        "cutover.poll": {"ok": True},
                    },
                }
            await asyncio.sleep(5.5)  # one export period
            async with client.get("/metrics") as answer:
                text = await answer.text()
        assert 'bridge_devices{state="mirrored"} 2.0' in text
        assert 'bridge_events_received_total{kind="ShadowChanged",side="aws"}' in text
        assert "bridge_event_lag_seconds_count" in text
        assert 'bridge_drift_total{side="azure"} 1.0' in text


async def test_a_large_initial_sync_uses_an_import_job_with_relay_modules(stack, tmp_path):
    env = stack.env()
    iot, data = aws_clients(env)
    for i in range(30):
        iot.create_thing(thingName=f"imp-{i:02d}", attributePayload={"attributes": {"i": str(i)}})
        _shadow(data, f"imp-{i:02d}", {"n": i})
    await asyncio.sleep(1)  # the glue publishes registry events from moto's thread
    await stack.aws.glue.drain()  # no event in flight: the sync starts from the read alone
    settings = bridge_settings(tmp_path, iothub={"import_threshold": 10})
    async with bridge(env, settings):
        await until_parity(env, "imp-")
        module = await asyncio.to_thread(azure_call, env, "get_module", "imp-07", "aws-bridge")
        assert module.module_id == "aws-bridge"
    stats = stack.iothub.service.stats
    assert stats.count(route="/jobs/create", method="POST", status=200) == 1
    # The devices and modules came through the job, not one identity call each.
    assert stats.count(route="/devices/{device_id}", method="PUT") == 0
    assert stats.count(route="/devices/{device_id}/modules/{module_id}", method="PUT") == 0
    assert stats.count(route="/twins/{device_id}", method="PUT") == 0


def _on_hub(stack, prefix):
    """Device ids whose identity and twin (with the mirrored tags) exist in the emulator."""
    registry = stack.iothub.registry
    found = set()
    for identity in registry.devices():
        device_id = identity.device_id
        if device_id.startswith(prefix):
            tags = registry.twin(device_id).get("tags") or {}
            if tags.get("aws", {}).get("thingName") == device_id:
                found.add(device_id)
    return found


async def test_readyz_turns_ready_only_once_every_device_of_the_initial_sync_is_on_the_hub(
    stack, tmp_path
):
    env = stack.env()
    iot, data = aws_clients(env)
    names = {f"rdy-{i:02d}" for i in range(25)}
    for name in names:
        iot.create_thing(thingName=name)
        _shadow(data, name, {"n": 1})
    # The hub refuses every registry write at first: the read is done, the creates wait.
    base = f"https://{stack.iothub.service.host}:{stack.iothub.service.port}"
    async with (
        aiohttp.ClientSession(base) as control,
        control.post(
            "/_emulator/faults", json={"status": 503, "route_prefix": "/devices"}, ssl=False
        ) as answer,
    ):
        assert answer.status == 201
    settings = bridge_settings(tmp_path)
    url = f"http://127.0.0.1:{settings.http.port}/readyz"
    async with bridge(env, settings), aiohttp.ClientSession() as client:
        async with asyncio.timeout(60):
            while True:
                with contextlib.suppress(aiohttp.ClientError):
                    async with client.get(url) as answer:
                        body = await answer.json()
                        sync = body["checks"]["mirror.initial_sync"]
                        if sync.get("progress"):
                            break
                await asyncio.sleep(0.2)
        assert answer.status == 503
        assert sync == {
            "ok": False,
            "detail": "creating devices on IoT Hub",
            "progress": {"devices": 25, "on_azure": 0},
        }
        async with (
            aiohttp.ClientSession(base) as control,
            control.delete("/_emulator/faults", ssl=False) as answer,
        ):
            assert answer.status < 300
        async with asyncio.timeout(90):
            while True:
                async with client.get(url) as answer:
                    if answer.status == 200:
                        break
                await asyncio.sleep(0.05)
        # Ready means every device of the read is on the hub, with its twin, right now.
        assert _on_hub(stack, "rdy-") == names


async def test_a_session_the_broker_lost_is_repaired_by_an_anti_entropy_pass(stack, tmp_path):
    # Whatever AWS would have queued for a session it no longer has (expired while the
    # bridge was away, or lost by the broker) reached no one. The change below has no event
    # at all (thing events off meanwhile), so only a pass can find it; periodic passes are
    # off in these settings.
    env = stack.env()
    iot, _data = aws_clients(env)
    iot.create_thing(thingName="ses-1", attributePayload={"attributes": {"v": "1"}})
    async with bridge(env, bridge_settings(tmp_path)):
        await until_parity(env, "ses-")
        iot.update_event_configurations(eventConfigurations={"THING": {"Enabled": False}})
        iot.update_thing(thingName="ses-1", attributePayload={"attributes": {"v": "2"}})
        iot.update_event_configurations(eventConfigurations={"THING": {"Enabled": True}})
        await stack.aws.broker.restart(forget_sessions=True)
        await until_parity(env, "ses-", timeout=60)


async def test_a_device_left_on_the_hub_by_a_killed_run_gets_its_twin_replaced(stack, tmp_path):
    # A run killed after its bulk create reached IoT Hub, before the store recorded it,
    # leaves the device there with the twin of that moment, while the store says
    # DISCOVERED. The next run's bulk create must not merge the newer twin into the old
    # one (a removed attribute would stay on Azure for good): it writes that device whole.
    env = stack.env()
    iot, _data = aws_clients(env)
    for i in range(5):  # several, so they are created in one bulk call
        iot.create_thing(thingName=f"left-{i}", attributePayload={"attributes": {"v": "2"}})
    old = twin_document(DeviceView("left-1", thing_version=1, attributes={"born": "live"}), {})
    registry = stack.iothub.registry
    registry.put_device("left-1", {"deviceId": "left-1"}, None)
    registry.replace_twin("left-1", {"tags": old.tags, "properties": {"desired": old.desired}}, "*")
    async with bridge(env, bridge_settings(tmp_path)):
        await until_parity(env, "left-")


async def test_an_import_job_rewrites_the_twins_a_killed_run_left_on_the_hub(stack, tmp_path):
    # The same as above for a large initial sync: an import job a killed run started goes
    # on without it, so the next run's job finds devices there already, with older twins,
    # one with its relay module too.
    env = stack.env()
    iot, _data = aws_clients(env)
    for i in range(12):
        iot.create_thing(thingName=f"jleft-{i:02d}", attributePayload={"attributes": {"v": "2"}})
    await asyncio.sleep(1)  # the glue publishes registry events from moto's thread
    await stack.aws.glue.drain()
    registry = stack.iothub.registry
    for device_id in ("jleft-03", "jleft-07"):
        old = twin_document(DeviceView(device_id, thing_version=1, attributes={"born": "x"}), {})
        registry.put_device(device_id, {"deviceId": device_id}, None)
        twin = {"tags": old.tags, "properties": {"desired": old.desired}}
        registry.replace_twin(device_id, twin, "*")
    registry.put_module("jleft-07", "aws-bridge", {"managedBy": "iot-bridge"}, None)
    async with bridge(env, bridge_settings(tmp_path, iothub={"import_threshold": 10})):
        await until_parity(env, "jleft-")
    assert stack.iothub.service.stats.count(route="/jobs/create", method="POST", status=200) == 1
    for device_id in ("jleft-03", "jleft-07"):
        assert registry.find(device_id, "aws-bridge") is not None
