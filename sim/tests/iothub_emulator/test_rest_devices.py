"""Device identities through Microsoft's unmodified azure-iot-hub SDK."""

from __future__ import annotations

from typing import Any

import pytest
from msrest.exceptions import HttpOperationError

from bridge_sim.iothub.sas import generate_key
from bridge_sim.pki import self_signed, thumbprints


def _status(error: pytest.ExceptionInfo[HttpOperationError]) -> Any:
    return error.value.response.status_code


def test_create_device_with_sas_returns_keys_and_etag(rm):
    primary, secondary = generate_key(), generate_key()
    device = rm.create_device_with_sas("dev-1", primary, secondary, "enabled")
    assert device.device_id == "dev-1"
    assert device.authentication.type == "sas"
    assert device.authentication.symmetric_key.primary_key == primary
    assert device.etag
    assert device.generation_id
    assert device.connection_state == "Disconnected"
    assert device.cloud_to_device_message_count == 0
    assert device.status == "enabled"


def test_create_generates_keys_when_omitted(rm):
    device = rm.create_device_with_sas("dev-keys", None, None, "enabled")
    assert device.authentication.symmetric_key.primary_key
    assert device.authentication.symmetric_key.secondary_key


def test_create_existing_device_is_409_device_already_exists(rm):
    rm.create_device_with_sas("dev-dup", None, None, "enabled")
    with pytest.raises(HttpOperationError) as error:
        rm.create_device_with_sas("dev-dup", None, None, "enabled")
    assert _status(error) == 409
    assert error.value.response.headers["iothub-errorcode"] == "DeviceAlreadyExists"
    assert "ErrorCode:DeviceAlreadyExists" in error.value.response.json()["Message"]


def test_create_device_with_x509_thumbprints(rm):
    primary, _ = thumbprints(self_signed("dev-x509").cert_pem)
    device = rm.create_device_with_x509("dev-x509", primary, None, "enabled")
    assert device.authentication.type == "selfSigned"
    assert device.authentication.x509_thumbprint.primary_thumbprint == primary


def test_create_device_with_certificate_authority(rm):
    device = rm.create_device_with_certificate_authority("dev-ca", "disabled")
    assert device.authentication.type == "certificateAuthority"
    assert device.status == "disabled"


def test_invalid_thumbprint_is_400(rm):
    with pytest.raises(HttpOperationError) as error:
        rm.create_device_with_x509("dev-bad", "not-hex", None, "enabled")
    assert _status(error) == 400


def test_update_with_current_etag_then_stale_etag_is_412(rm):
    created = rm.create_device_with_sas("dev-upd", None, None, "enabled")
    updated = rm.update_device_with_sas(
        "dev-upd", created.etag, None, None, "disabled", status_reason="maintenance"
    )
    assert updated.status == "disabled"
    assert updated.status_reason == "maintenance"
    assert updated.etag != created.etag
    assert updated.generation_id == created.generation_id
    with pytest.raises(HttpOperationError) as error:
        rm.update_device_with_sas("dev-upd", created.etag, None, None, "enabled")
    assert _status(error) == 412
    assert error.value.response.headers["iothub-errorcode"] == "PreconditionFailed"


def test_update_with_wildcard_etag_switches_auth_type(rm):
    rm.create_device_with_sas("dev-star", None, None, "enabled")
    updated = rm.update_device_with_certificate_authority("dev-star", None, "enabled")
    assert updated.authentication.type == "certificateAuthority"


def test_update_missing_device_is_404(rm):
    with pytest.raises(HttpOperationError) as error:
        rm.update_device_with_sas("ghost", None, None, None, "enabled")
    assert _status(error) == 404


def test_get_device_and_get_devices_with_top(rm):
    for index in range(5):
        rm.create_device_with_sas(f"dev-list-{index}", None, None, "enabled")
    assert rm.get_device("dev-list-3").device_id == "dev-list-3"
    assert len(rm.get_devices()) == 5
    assert [d.device_id for d in rm.get_devices(2)] == ["dev-list-0", "dev-list-1"]


def test_get_missing_device_is_404_device_not_found(rm):
    with pytest.raises(HttpOperationError) as error:
        rm.get_device("missing")
    assert _status(error) == 404
    assert error.value.response.headers["iothub-errorcode"] == "DeviceNotFound"


def test_delete_device_with_etag_rules(rm):
    device = rm.create_device_with_sas("dev-del", None, None, "enabled")
    rm.update_device_with_sas("dev-del", device.etag, None, None, "enabled")
    with pytest.raises(HttpOperationError) as error:
        rm.delete_device("dev-del", device.etag)
    assert _status(error) == 412
    rm.delete_device("dev-del")
    with pytest.raises(HttpOperationError) as error:
        rm.get_device("dev-del")
    assert _status(error) == 404


def test_module_create_get_list_delete(rm):
    rm.create_device_with_sas("edge-1", None, None, "enabled")
    module = rm.create_module_with_sas("edge-1", "mod-a", "owner", None, None)
    assert module.module_id == "mod-a"
    assert module.device_id == "edge-1"
    assert module.authentication.symmetric_key.primary_key
    rm.create_module_with_certificate_authority("edge-1", "mod-b", None)
    assert rm.get_module("edge-1", "mod-a").managed_by == "owner"
    assert sorted(m.module_id for m in rm.get_modules("edge-1")) == ["mod-a", "mod-b"]
    with pytest.raises(HttpOperationError) as error:
        rm.create_module_with_sas("edge-1", "mod-a", None, None, None)
    assert _status(error) == 409
    assert error.value.response.headers["iothub-errorcode"] == "ModuleAlreadyExistsOnDevice"
    updated = rm.update_module_with_sas("edge-1", "mod-a", None, module.etag, None, None)
    with pytest.raises(HttpOperationError) as error:
        rm.update_module_with_sas("edge-1", "mod-a", None, module.etag, None, None)
    assert _status(error) == 412
    rm.delete_module("edge-1", "mod-a", updated.etag)
    with pytest.raises(HttpOperationError) as error:
        rm.get_module("edge-1", "mod-a")
    assert _status(error) == 404
    assert error.value.response.headers["iothub-errorcode"] == "ModuleNotFound"


def test_statistics(rm, service_hub):
    rm.create_device_with_sas("on", None, None, "enabled")
    rm.create_device_with_sas("off", None, None, "disabled")
    service_hub.api.registry.set_connection_state("on", connected=True)
    registry = rm.get_device_registry_statistics()
    assert (registry.total_device_count, registry.enabled_device_count) == (2, 1)
    assert registry.disabled_device_count == 1
    assert rm.get_service_statistics().connected_device_count == 1


def test_partial_update_keeps_keys_and_rejected_update_changes_nothing(service_hub):
    registry = service_hub.api.registry
    created = registry.put_device("keep", {}, None)
    keys = created.authentication.sas_keys
    registry.put_device("keep", {"status": "disabled"}, "*")
    assert registry.identity("keep").authentication.sas_keys == keys
    etag = registry.identity("keep").etag
    response = service_hub.raw(
        "PUT",
        "/devices/keep",
        json={"status": "bogus", "authentication": {"type": "certificateAuthority"}},
        headers={"If-Match": "*"},
    )
    assert response.status_code == 400
    assert registry.identity("keep").authentication.type == "sas"
    assert registry.identity("keep").etag == etag


def test_module_on_missing_device_is_404(rm):
    with pytest.raises(HttpOperationError) as error:
        rm.create_module_with_sas("nobody", "mod", None, None, None)
    assert _status(error) == 404
    assert error.value.response.headers["iothub-errorcode"] == "DeviceNotFound"


def test_deleting_a_device_deletes_its_modules(rm):
    rm.create_device_with_sas("parent", None, None, "enabled")
    rm.create_module_with_sas("parent", "child", None, None, None)
    rm.delete_device("parent")
    rm.create_device_with_sas("parent", None, None, "enabled")
    assert rm.get_modules("parent") == []
