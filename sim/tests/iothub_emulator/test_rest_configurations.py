"""Automatic device management through azure-iot-hub's `IoTHubConfigurationManager`.

The calls are those of the SDK's iothub_configuration_manager_sample.py: create, get,
update with the etag, list, test queries, delete. Before the emulator served
`/configurations`, every one of them failed with 404.
"""

from __future__ import annotations

import pytest
from azure.iot.hub import IoTHubConfigurationManager
from azure.iot.hub.models import (
    Configuration,
    ConfigurationContent,
    ConfigurationMetrics,
    ConfigurationQueriesTestInput,
    Twin,
)
from msrest.exceptions import HttpOperationError


@pytest.fixture
def cm(service_hub):
    # The hub serves every test of the module: forget earlier tests' configurations.
    assert service_hub.raw("POST", "/_emulator/reset", api_version=None).status_code == 204
    manager = IoTHubConfigurationManager.from_connection_string(
        service_hub.api.connection_string("iothubowner")
    )
    manager.protocol.config.connection.verify = str(service_hub.ca_path)
    return manager


def _configuration(config_id, interval, condition="tags.env='prod'", priority=1):
    return Configuration(
        id=config_id,
        content=ConfigurationContent(device_content={"properties.desired.interval": interval}),
        target_condition=condition,
        priority=priority,
        labels={"team": "fleet"},
        metrics=ConfigurationMetrics(
            queries={
                "reporting": "SELECT deviceId FROM devices WHERE properties.reported.ok = true"
            }
        ),
    )


def _code(error: HttpOperationError) -> tuple[int, str]:
    return error.response.status_code, error.response.headers["iothub-errorcode"]


def test_the_sample_lifecycle_with_etags(cm):
    created = cm.create_configuration(_configuration("sample-config", 10))
    assert (created.id, created.schema_version, created.priority) == ("sample-config", "1.0", 1)
    assert created.content.device_content == {"properties.desired.interval": 10}
    assert created.etag
    assert created.created_time_utc
    with pytest.raises(HttpOperationError) as again:
        cm.create_configuration(_configuration("sample-config", 10))
    assert _code(again.value) == (409, "ConfigurationAlreadyExists")

    created.priority = 4
    updated = cm.update_configuration(created, created.etag)
    assert updated.priority == 4
    assert updated.etag != created.etag
    with pytest.raises(HttpOperationError) as stale:
        cm.update_configuration(created, created.etag)
    assert _code(stale.value) == (412, "PreconditionFailed")
    # Content is fixed once created; only condition, priority, labels and metrics change.
    updated.content = ConfigurationContent(device_content={"properties.desired.interval": 99})
    with pytest.raises(HttpOperationError) as content:
        cm.update_configuration(updated, "*")
    assert content.value.response.status_code == 400

    assert [c.id for c in cm.get_configurations(10)] == ["sample-config"]
    assert cm.get_configuration("sample-config").priority == 4
    tested = cm.test_configuration_queries(
        ConfigurationQueriesTestInput(
            target_condition="tags.env='prod'",
            custom_metric_queries={"bad": "SELECT FROM"},
        )
    )
    assert tested.target_condition_error == ""
    assert set(tested.custom_metric_query_errors) == {"bad"}

    cm.delete_configuration("sample-config")
    with pytest.raises(HttpOperationError) as gone:
        cm.get_configuration("sample-config")
    assert _code(gone.value) == (404, "ConfigurationNotFound")


def test_the_highest_priority_configuration_is_applied_to_targeted_twins(rm, cm):
    for device_id, env in (("d-prod-1", "prod"), ("d-prod-2", "prod"), ("d-test", "test")):
        rm.create_device_with_sas(device_id, None, None, "enabled")
        rm.update_twin(device_id, Twin(tags={"env": env}), "*")
    low = cm.create_configuration(_configuration("low", 10, condition="*", priority=1))
    high = cm.create_configuration(_configuration("high", 60, priority=9))
    desired = {d: rm.get_twin(d).properties.desired for d in ("d-prod-1", "d-prod-2", "d-test")}
    assert {d: value["interval"] for d, value in desired.items()} == {
        "d-prod-1": 60,
        "d-prod-2": 60,
        "d-test": 10,
    }
    low = cm.get_configuration("low")
    assert low.system_metrics.results == {"targetedCount": 3, "appliedCount": 1}
    assert high.system_metrics.results == {"targetedCount": 2, "appliedCount": 2}
    assert "tags.env='prod'" in high.system_metrics.queries["targetedCount"]
    assert high.metrics.results == {"reporting": 0}


@pytest.mark.parametrize("config_id", ["UpperCase", "has space", "a|b", "x" * 129])
def test_invalid_ids_are_refused(cm, config_id):
    with pytest.raises(HttpOperationError) as refused:
        cm.create_configuration(_configuration(config_id, 1))
    assert _code(refused.value) == (400, "ArgumentInvalid")
