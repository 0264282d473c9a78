"""Auth, malformed requests, throttling, injected faults and the control API."""

from __future__ import annotations

import time
from typing import Any

import pytest
from azure.iot.hub import IoTHubRegistryManager
from azure.iot.hub.models import ExportImportDevice, QuerySpecification, Twin
from msrest.exceptions import ClientRequestError, HttpOperationError

from bridge_sim.iothub.quotas import Operation, Quotas, Rate
from bridge_sim.iothub.sas import generate_key


def _error_code(response) -> Any:
    assert response.json()["Message"].startswith(
        f"ErrorCode:{response.headers['iothub-errorcode']};"
    )
    return response.headers["iothub-errorcode"]


def test_wrong_key_is_401(service_hub):
    connection_string = service_hub.api.connection_string().rsplit("=", 2)[0]
    forged = f"{connection_string.rsplit(';', 1)[0]};SharedAccessKey={generate_key()}"
    manager = IoTHubRegistryManager.from_connection_string(forged)
    manager.protocol.config.connection.verify = str(service_hub.ca_path)
    with pytest.raises(HttpOperationError) as error:
        manager.get_devices()
    assert error.value.response.status_code == 401
    assert error.value.response.headers["iothub-errorcode"] == "IotHubUnauthorizedAccess"


def test_expired_missing_and_mangled_tokens_are_401(service_hub):
    expired = service_hub.token(expiry=int(time.time()) - 10)
    assert service_hub.raw("GET", "/devices", token=expired).status_code == 401
    assert service_hub.raw("GET", "/devices", token="").status_code == 401
    assert service_hub.raw("GET", "/devices", token="SharedAccessSignature sr=x").status_code == 401
    other_hub = service_hub.token().replace("sr=127.0.0.1", "sr=10.0.0.1")
    response = service_hub.raw("GET", "/devices", token=other_hub)
    assert response.status_code == 401
    assert _error_code(response) == "IotHubUnauthorizedAccess"
    assert service_hub.raw("GET", "/devices").status_code == 200


def test_policy_without_the_right_is_401(service_hub):
    reader = service_hub.registry_manager("registryRead")
    assert reader.get_devices() == []
    with pytest.raises(HttpOperationError) as error:
        reader.create_device_with_sas("nope", None, None, "enabled")
    assert error.value.response.status_code == 401
    service = service_hub.registry_manager("service")
    with pytest.raises(HttpOperationError) as error:
        service.get_devices()
    assert error.value.response.status_code == 401


def test_malformed_json_is_400(service_hub):
    response = service_hub.raw(
        "PUT", "/devices/d1", data=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert _error_code(response) == "BadRequest"
    assert service_hub.raw("PATCH", "/twins/d1", data=b"[1, 2").status_code == 400
    assert service_hub.raw("PUT", "/devices/d1", json=[1, 2]).status_code == 400


def test_unknown_route_404_wrong_method_405_missing_api_version_400(service_hub):
    response = service_hub.raw("GET", "/nowhere")
    assert response.status_code == 404
    assert _error_code(response) == "NotFound"
    response = service_hub.raw("PATCH", "/devices")
    assert response.status_code == 405
    assert _error_code(response) == "MethodNotAllowed"
    assert service_hub.raw("GET", "/devices", api_version=None).status_code == 400


def test_invalid_device_id_is_400(service_hub):
    response = service_hub.raw("PUT", "/devices/bad%20id", json={"deviceId": "bad id"})
    assert response.status_code == 400
    assert _error_code(response) == "ArgumentInvalid"


def test_query_quota_of_s1_throttles_the_21st_query(service_hub, rm):
    service_hub.api.quotas = Quotas("S1", 1)
    spec = QuerySpecification(query="SELECT * FROM devices")
    for _ in range(20):
        rm.query_iot_hub(spec)
    with pytest.raises(HttpOperationError) as error:
        rm.query_iot_hub(spec)
    assert error.value.response.status_code == 429
    assert error.value.response.headers["iothub-errorcode"] == "ThrottlingException"


def test_bulk_counts_one_registry_operation_per_device(service_hub, rm):
    service_hub.api.quotas = Quotas("S1", 1)
    entries = [ExportImportDevice(id=f"b{i}", import_mode="create") for i in range(100)]
    assert rm.bulk_create_or_update_devices(entries).is_successful
    with pytest.raises(HttpOperationError) as error:
        rm.get_device("b1")
    assert error.value.response.status_code == 429


def test_twin_updates_throttle_on_a_tight_override(service_hub, rm):
    service_hub.api.quotas = Quotas("S1", overrides={Operation.TWIN_UPDATE: Rate(2, 60)})
    rm.create_device_with_sas("t", None, None, "enabled")
    rm.update_twin("t", Twin(tags={"a": 1}))
    rm.update_twin("t", Twin(tags={"a": 2}))
    with pytest.raises(HttpOperationError) as error:
        rm.update_twin("t", Twin(tags={"a": 3}))
    assert error.value.response.status_code == 429
    assert rm.get_twin("t").tags == {"a": 2}


def test_one_injected_503_is_absorbed_by_the_sdk_retry(service_hub, rm):
    response = service_hub.raw(
        "POST", "/_emulator/faults", token="", json={"status": 503, "count": 1}
    )
    assert response.status_code == 201
    assert rm.get_devices() == []
    assert service_hub.api.stats.count(route="/devices", status=503) == 1
    assert service_hub.api.stats.count(route="/devices", status=200) == 1


def test_injected_503s_surface_when_retries_are_off(service_hub, rm):
    rm.protocol.config.retry_policy.retries = 0
    service_hub.raw("POST", "/_emulator/faults", token="", json={"status": 503, "count": 2})
    response = service_hub.raw("GET", "/devices")
    assert response.status_code == 503
    assert _error_code(response) == "ServiceUnavailable"
    # msrest lets urllib3 retry 5xx; with no retries left it raises before parsing.
    with pytest.raises(ClientRequestError, match="503"):
        rm.get_devices()
    assert rm.get_devices() == []
    assert service_hub.api.stats.count(route="/devices", status=503) == 2


def test_fractional_429_fault_on_a_route_prefix(service_hub, rm):
    service_hub.raw(
        "POST",
        "/_emulator/faults",
        token="",
        json={"status": 429, "fraction": 1.0, "routePrefix": "/twins/"},
    )
    rm.create_device_with_sas("f", None, None, "enabled")
    with pytest.raises(HttpOperationError) as error:
        rm.get_twin("f")
    assert error.value.response.status_code == 429
    assert service_hub.raw("DELETE", "/_emulator/faults", token="").status_code == 204
    assert rm.get_twin("f").device_id == "f"


def test_latency_and_stats_and_reset_through_the_control_api(service_hub, rm):
    rm.create_device_with_sas("r", None, None, "enabled")
    assert (
        service_hub.raw("PUT", "/_emulator/latency", token="", json={"seconds": 0.3}).status_code
        == 204
    )
    started = time.monotonic()
    rm.get_device("r")
    assert time.monotonic() - started >= 0.3
    service_hub.raw("PUT", "/_emulator/latency", token="", json={"seconds": 0})
    stats = service_hub.raw("GET", "/_emulator/stats", token="").json()["requests"]
    assert {
        "endpoint": "rest",
        "method": "GET",
        "route": "/devices/{device_id}",
        "status": 200,
        "count": 1,
    } in stats
    assert service_hub.raw("POST", "/_emulator/reset", token="").status_code == 204
    with pytest.raises(HttpOperationError):
        rm.get_device("r")


def test_control_api_sets_quotas(service_hub, rm):
    response = service_hub.raw("PUT", "/_emulator/quotas", token="", json={"tier": "S9"})
    assert response.status_code == 400
    assert (
        service_hub.raw(
            "PUT", "/_emulator/quotas", token="", json={"tier": "S3", "units": 2}
        ).status_code
        == 204
    )
    assert service_hub.api.quotas.rate(Operation.QUERY) == Rate(2000, 60)


def test_a_fraction_of_requests_fails(service_hub):
    service_hub.api.faults.rng.seed(7)
    service_hub.raw("POST", "/_emulator/faults", token="", json={"status": 429, "fraction": 0.5})
    statuses = [service_hub.raw("GET", "/devices").status_code for _ in range(40)]
    assert set(statuses) == {200, 429}
    assert 8 <= statuses.count(429) <= 32
    rules = service_hub.raw("GET", "/_emulator/faults", token="").json()["rules"]
    assert rules[0]["hits"] == statuses.count(429)
