"""The registry's device-facing API: lookups, reported patches, desired subscriptions."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bridge_sim.iothub.errors import IoTHubError
from bridge_sim.iothub.registry import Registry


@pytest.fixture
def registry() -> Registry:
    registry = Registry("myhub")
    registry.put_device("d1", {"authentication": {"type": "sas"}}, None)
    registry.put_module("d1", "m1", {"authentication": {"type": "none"}}, None)
    return registry


def test_identity_lookup_exposes_auth_and_status(registry):
    device = registry.identity("d1")
    assert device.authentication.type == "sas"
    assert len(device.authentication.sas_keys) == 2
    assert device.enabled
    assert registry.identity("d1", "m1").authentication.type == "none"
    assert registry.find("nobody") is None
    assert registry.find("d1", "nobody") is None
    with pytest.raises(IoTHubError) as error:
        registry.identity("d1", "nobody")
    assert error.value.code == "ModuleNotFound"
    registry.put_device("d1", {"status": "disabled"}, "*")
    assert not registry.device_enabled("d1")
    assert registry.device_resource("d1", "m1") == "myhub.azure-devices.net/devices/d1/modules/m1"


def test_devices_may_not_use_auth_none(registry):
    with pytest.raises(IoTHubError) as error:
        registry.put_device("d2", {"authentication": {"type": "none"}}, None)
    assert error.value.status == 400


def test_reported_patch_returns_new_version_and_merges(registry):
    assert registry.twin_properties("d1") == {
        "desired": {"$version": 1},
        "reported": {"$version": 1},
    }
    assert registry.patch_reported("d1", {"temp": 20, "cfg": {"a": 1}}) == 2
    assert registry.patch_reported("d1", {"cfg": {"a": None, "b": 2}}) == 3
    reported = registry.twin_properties("d1")["reported"]
    assert reported == {"temp": 20, "cfg": {"b": 2}, "$version": 3}
    twin = registry.twin("d1")
    assert "$lastUpdated" in twin["properties"]["reported"]["$metadata"]["temp"]
    assert twin["version"] == 3


def test_reported_limits_apply(registry):
    with pytest.raises(IoTHubError) as error:
        registry.patch_reported("d1", {"blob": "x" * 4097})
    assert error.value.code == "ArgumentInvalid"
    assert registry.twin_properties("d1")["reported"]["$version"] == 1


def test_module_twins_are_separate(registry):
    registry.patch_reported("d1", {"x": 1}, module_id="m1")
    assert registry.twin_properties("d1", "m1")["reported"]["x"] == 1
    assert "x" not in registry.twin_properties("d1")["reported"]


def test_desired_changes_reach_a_callback(registry):
    seen: list[dict[str, Any]] = []
    subscription = registry.subscribe_desired("d1", callback=seen.append)
    registry.update_twin("d1", {"properties": {"desired": {"fw": "2.0"}}}, None)
    registry.update_twin("d1", {"tags": {"only": "tags"}}, None)
    registry.replace_twin("d1", {"properties": {"desired": {"rate": 5}}}, "*")
    subscription.close()
    subscription.close()
    registry.update_twin("d1", {"properties": {"desired": {"late": 1}}}, None)
    assert seen == [{"fw": "2.0", "$version": 2}, {"rate": 5, "$version": 3}]


async def test_desired_changes_reach_a_queue_from_another_thread(registry):
    subscription = registry.subscribe_desired("d1", module_id="m1")
    patch = {"properties": {"desired": {"mode": "eco"}}}
    await asyncio.to_thread(registry.update_twin, "d1", patch, None, "m1")
    received = await asyncio.wait_for(subscription.queue.get(), 2)
    assert received == {"mode": "eco", "$version": 2}
    subscription.close()


def test_connection_state_and_activity(registry):
    registry.set_connection_state("d1", connected=True)
    device = registry.identity("d1")
    assert device.connected
    body = device.identity_json()
    assert body["connectionState"] == "Connected"
    assert body["connectionStateUpdatedTime"] != "0001-01-01T00:00:00Z"
    registry.set_connection_state("d1", connected=False)
    assert registry.twin("d1")["connectionState"] == "Disconnected"
    registry.record_activity("d1", "m1")
    assert registry.identity("d1", "m1").last_activity_time is not None


def test_identity_limit_counts_modules_and_frees_on_delete():
    small = Registry("tiny", max_identities=2)
    small.put_device("a", {}, None)
    small.put_module("a", "m", {}, None)
    with pytest.raises(IoTHubError) as error:
        small.put_device("b", {}, None)
    assert error.value.status == 403
    small.delete_device("a", None)
    small.put_device("b", {}, None)
    small.put_device("c", {}, None)


def test_identity_listeners_hear_creates_updates_and_deletes(registry):
    events: list[tuple[str, str, str | None]] = []
    remove = registry.add_identity_listener(lambda *event: events.append(event))
    registry.put_device("d2", {}, None)
    registry.put_device("d2", {"status": "disabled"}, "*")
    registry.put_module("d2", "m", {}, None)
    registry.delete_module("d2", "m", None)
    registry.delete_device("d2", None)
    remove()
    registry.put_device("d3", {}, None)
    assert events == [
        ("created", "d2", None),
        ("updated", "d2", None),
        ("created", "d2", "m"),
        ("deleted", "d2", "m"),
        ("deleted", "d2", None),
    ]
