"""Twins and module twins through the SDK: merge-patch, replace, etags, versions, limits."""

from __future__ import annotations

from typing import Any

import pytest
from azure.iot.hub.models import CloudToDeviceMethod, Twin, TwinProperties
from msrest.exceptions import HttpOperationError


@pytest.fixture
def device(rm):
    return rm.create_device_with_sas("twin-dev", None, None, "enabled")


def _desired_twin(desired=None, tags=None) -> Twin:
    return Twin(tags=tags, properties=TwinProperties(desired=desired))


def test_new_twin_has_versions_metadata_and_etag(rm, device):
    twin = rm.get_twin("twin-dev")
    assert twin.device_id == "twin-dev"
    assert twin.etag
    assert twin.version >= 1
    assert twin.status == "enabled"
    assert twin.authentication_type == "sas"
    assert twin.connection_state == "Disconnected"
    assert twin.properties.desired["$version"] == 1
    assert twin.properties.reported["$version"] == 1
    assert "$lastUpdated" in twin.properties.desired["$metadata"]
    assert twin.tags == {}


def test_update_twin_merges_and_null_deletes(rm, device):
    first = rm.update_twin(
        "twin-dev", _desired_twin({"fw": "1.0", "cfg": {"a": 1, "b": 2}}, {"site": {"floor": 3}})
    )
    assert first.properties.desired["fw"] == "1.0"
    assert first.properties.desired["$version"] == 2
    assert first.properties.desired["$metadata"]["cfg"]["a"]["$lastUpdatedVersion"] == 2
    second = rm.update_twin("twin-dev", _desired_twin({"cfg": {"a": None, "c": 3}}))
    assert second.properties.desired["cfg"] == {"b": 2, "c": 3}
    assert second.properties.desired["fw"] == "1.0"
    assert second.properties.desired["$version"] == 3
    assert second.tags == {"site": {"floor": 3}}
    assert second.version > first.version
    assert second.etag != first.etag
    third = rm.update_twin("twin-dev", Twin(tags={"site": None}))
    assert third.tags == {}
    assert third.properties.desired["$version"] == 3  # a tags-only write leaves desired alone


def test_update_twin_stale_etag_is_412(rm, device):
    twin = rm.get_twin("twin-dev")
    rm.update_twin("twin-dev", _desired_twin({"x": 1}), twin.etag)
    with pytest.raises(HttpOperationError) as error:
        rm.update_twin("twin-dev", _desired_twin({"x": 2}), twin.etag)
    assert error.value.response.status_code == 412
    assert error.value.response.headers["iothub-errorcode"] == "PreconditionFailed"


def test_replace_twin_replaces_tags_and_desired_but_keeps_reported(rm, service_hub, device):
    rm.update_twin("twin-dev", _desired_twin({"old": 1}, {"keep": False}))
    service_hub.api.registry.patch_reported("twin-dev", {"temp": 21})
    current = rm.get_twin("twin-dev")
    replaced = rm.replace_twin("twin-dev", _desired_twin({"new": 2}, {"t": "x"}), current.etag)
    desired = {k: v for k, v in replaced.properties.desired.items() if not k.startswith("$")}
    assert desired == {"new": 2}
    assert replaced.tags == {"t": "x"}
    assert replaced.properties.reported["temp"] == 21
    assert replaced.properties.desired["$version"] == current.properties.desired["$version"] + 1
    with pytest.raises(HttpOperationError) as error:
        rm.replace_twin("twin-dev", _desired_twin({"late": 1}), current.etag)
    assert error.value.response.status_code == 412


def test_replace_twin_with_the_fetched_twin_round_trips(rm, device):
    rm.update_twin("twin-dev", _desired_twin({"a": 1}))
    twin = rm.get_twin("twin-dev")
    twin.properties.desired["b"] = 2
    replaced = rm.replace_twin("twin-dev", twin)
    assert replaced.properties.desired["a"] == 1
    assert replaced.properties.desired["b"] == 2


def test_desired_over_32kb_is_400(rm, device):
    big = {f"k{i}": "x" * 4000 for i in range(9)}
    with pytest.raises(HttpOperationError) as error:
        rm.update_twin("twin-dev", _desired_twin(big))
    assert error.value.response.status_code == 400
    assert error.value.response.headers["iothub-errorcode"] == "ArgumentInvalid"


def test_tags_over_8kb_is_400(rm, device):
    with pytest.raises(HttpOperationError) as error:
        rm.update_twin("twin-dev", Twin(tags={f"t{i}": "y" * 3000 for i in range(3)}))
    assert error.value.response.status_code == 400


def test_depth_over_10_is_400_and_10_is_fine(rm, device):
    # IoT Hub's device twin docs: {"one": {"two": ... {"ten": {"property": "value"}}}} is
    # valid (ten objects below the section); one more level is not.
    def nested(levels):
        value: dict[str, Any] = {"property": "value"}
        for level in range(levels, 0, -1):
            value = {f"l{level}": value}
        return value

    rm.update_twin("twin-dev", _desired_twin(nested(10)))
    with pytest.raises(HttpOperationError) as error:
        rm.update_twin("twin-dev", _desired_twin(nested(11)))
    assert error.value.response.status_code == 400


def test_invalid_keys_are_400(rm, device):
    for key in ("a.b", "has space", "$x"):
        with pytest.raises(HttpOperationError) as error:
            rm.update_twin("twin-dev", Twin(tags={"ok": {key: 1}}))
        assert error.value.response.status_code == 400


def test_twin_of_missing_device_is_404(rm):
    with pytest.raises(HttpOperationError) as error:
        rm.get_twin("nobody")
    assert error.value.response.status_code == 404


def test_module_twins(rm, device):
    rm.create_module_with_sas("twin-dev", "mod", None, None, None)
    twin = rm.get_module_twin("twin-dev", "mod")
    assert twin.module_id == "mod"
    assert twin.properties.desired["$version"] == 1
    updated = rm.update_module_twin("twin-dev", "mod", _desired_twin({"rate": 5}), twin.etag)
    assert updated.properties.desired["rate"] == 5
    with pytest.raises(HttpOperationError) as error:
        rm.update_module_twin("twin-dev", "mod", _desired_twin({"rate": 6}), twin.etag)
    assert error.value.response.status_code == 412
    replaced = rm.replace_module_twin("twin-dev", "mod", _desired_twin({"only": True}))
    assert "rate" not in replaced.properties.desired
    assert rm.get_twin("twin-dev").properties.desired["$version"] == 1


def test_invoke_method_on_offline_device_is_404_device_not_online(rm, device):
    request = CloudToDeviceMethod(method_name="reboot", payload={"delay": 1})
    with pytest.raises(HttpOperationError) as error:
        rm.invoke_device_method("twin-dev", request)
    assert error.value.response.status_code == 404
    assert error.value.response.headers["iothub-errorcode"] == "DeviceNotOnline"
    rm.create_module_with_sas("twin-dev", "mod", None, None, None)
    with pytest.raises(HttpOperationError) as error:
        rm.invoke_device_module_method("twin-dev", "mod", request)
    assert error.value.response.headers["iothub-errorcode"] == "DeviceNotOnline"


def test_invoke_method_reaches_the_injected_invoker_when_connected(rm, service_hub, device):
    calls = []

    async def invoker(device_id, module_id, body):
        calls.append((device_id, module_id, body["methodName"], body["payload"]))
        return 200, {"ok": True}

    service_hub.api.method_invoker = invoker
    service_hub.api.registry.set_connection_state("twin-dev", connected=True)
    result = rm.invoke_device_method(
        "twin-dev", CloudToDeviceMethod(method_name="reboot", payload={"delay": 1})
    )
    assert result.status == 200
    assert result.payload == {"ok": True}
    assert calls == [("twin-dev", None, "reboot", {"delay": 1})]
    assert rm.get_device("twin-dev").connection_state == "Connected"
