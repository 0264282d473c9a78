"""The landing zone module parses, matches the planner's tfvars, and passes checkov."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import hcl2
import pytest

from bridge.inventory.models import Inventory, TopicRule
from bridge.plan import PlanOptions, build_plan

MODULE = Path(__file__).resolve().parents[2] / "terraform"
FILES = ("versions.tf", "variables.tf", "main.tf", "outputs.tf")
ACTIONS = [
    {"kinesis": {"streamName": "telemetry"}},
    {"s3": {"bucketName": "archive"}},
    {"sqs": {"queueUrl": "https://sqs.us-east-1.amazonaws.com/1/orders"}},
    {"sns": {"targetArn": "arn:aws:sns:us-east-1:1:alarms"}},
]


def unquote(text: Any) -> Any:
    return text.strip('"') if isinstance(text, str) else text


def load(name: str) -> dict[str, Any]:
    with (MODULE / name).open() as handle:
        return hcl2.load(handle)


def variables() -> dict[str, dict[str, Any]]:
    return {unquote(k): v for block in load("variables.tf")["variable"] for k, v in block.items()}


def resources() -> dict[str, dict[str, Any]]:
    found = {}
    for block in load("main.tf")["resource"]:
        for kind, named in block.items():
            for name, body in named.items():
                found[f"{unquote(kind)}.{unquote(name)}"] = body
    return found


def full_tfvars() -> dict[str, Any]:
    rules = [TopicRule(name="all_targets", sql="SELECT * FROM 'a/+'", actions=ACTIONS)]
    inventory = Inventory(
        generated_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC), region="us-east-1", rules=rules
    )
    return build_plan(inventory, PlanOptions()).tfvars


def test_every_file_parses_and_the_provider_is_pinned():
    for name in FILES:
        assert load(name), name
    [terraform] = load("versions.tf")["terraform"]
    [providers] = terraform["required_providers"]
    assert unquote(providers["azurerm"]["source"]) == "hashicorp/azurerm"
    assert re.fullmatch(r"~> \d+\.\d+", unquote(providers["azurerm"]["version"]))


def test_variables_and_planner_tfvars_are_the_same_set():
    assert set(variables()) == set(full_tfvars())


def test_object_variables_have_exactly_the_fields_the_planner_writes():
    declared = variables()
    tfvars = full_tfvars()
    for name in ("endpoints", "routes"):
        fields = set(re.findall(r"(\w+) = ", declared[name]["type"]))
        assert tfvars[name], name
        for item in tfvars[name]:
            assert set(item) == fields, (name, item)


def test_tfvars_values_have_the_declared_types():
    kinds = {"string": str, "number": int, "bool": bool}
    for name, spec in variables().items():
        value = full_tfvars()[name]
        declared = spec["type"]
        if declared in kinds:
            assert isinstance(value, kinds[declared]), name
        elif "list(string)" in declared and declared.startswith("${list(string"):
            assert all(isinstance(item, str) for item in value), name
        elif declared.startswith("${map(string"):
            assert all(isinstance(item, str) for item in value.values()), name
        else:
            assert isinstance(value, list), name


def test_every_variable_is_used_and_every_used_variable_is_declared():
    text = (MODULE / "main.tf").read_text()
    assert set(re.findall(r"var\.(\w+)", text)) == set(variables())


def test_endpoint_targets_name_entities_the_module_creates():
    tfvars = full_tfvars()
    entity = {
        "StorageContainer": "storage_containers",
        "EventHub": "event_hubs",
        "ServiceBusQueue": "servicebus_queues",
        "ServiceBusTopic": "servicebus_topics",
    }
    assert {e["type"] for e in tfvars["endpoints"]} == set(entity)
    for endpoint in tfvars["endpoints"]:
        assert endpoint["target"] in tfvars[entity[endpoint["type"]]]
    endpoint_names = {e["name"] for e in tfvars["endpoints"]} | {"events"}
    for route in tfvars["routes"]:
        assert set(route["endpoint_names"]) <= endpoint_names


def test_storage_is_locked_down_and_the_hub_keeps_its_fallback_route():
    found = resources()
    storage = found["azurerm_storage_account.this"]
    assert unquote(storage["min_tls_version"]) == "TLS1_2"
    assert storage["enable_https_traffic_only"] is True
    assert storage["allow_nested_items_to_be_public"] is False
    assert unquote(found["azurerm_storage_container.this"]["container_access_type"]) == "private"
    hub = found["azurerm_iothub.this"]
    [sku] = hub["sku"]
    assert (sku["name"], sku["capacity"]) == (
        "${var.iothub_sku_name}",
        "${var.iothub_sku_capacity}",
    )
    [fallback] = hub["fallback_route"]
    assert fallback["enabled"] is True
    assert [unquote(n) for n in fallback["endpoint_names"]] == ["events"]
    [linked] = found["azurerm_iothub_dps.this"]["linked_hub"]
    assert "azurerm_iothub_shared_access_policy.dps" in linked["connection_string"]
    route = found["azurerm_iothub_route.this"]
    assert {"source", "condition", "endpoint_names", "enabled"} <= set(route)


def test_every_checkov_skip_gives_a_reason():
    skips = re.findall(r"#checkov:skip=([A-Z0-9_]+)(?::(.*))?", (MODULE / "main.tf").read_text())
    assert skips
    for check, reason in skips:
        assert len((reason or "").strip()) > 20, check


def _checkov() -> str:
    # checkov pins old boto3 and packaging, so it lives in its own venv (.venv-checkov),
    # which `make setup` creates. Missing it is a failure, not a skip.
    found = os.environ.get("CHECKOV_BIN") or shutil.which("checkov")
    local = Path(__file__).resolve().parents[2] / ".venv-checkov" / "bin" / "checkov"
    if not found and local.exists():
        found = str(local)
    if not found:
        pytest.fail("checkov not found: run `make setup` or set CHECKOV_BIN")
    return found


def test_checkov_finds_nothing_left_unexplained():
    completed = subprocess.run(  # noqa: S603 - a fixed command line on our own module
        [
            _checkov(),
            "--directory",
            str(MODULE),
            "--framework",
            "terraform",
            "--skip-download",
            "--quiet",
            "--output",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    report = json.loads(completed.stdout)
    failed = [
        (check["check_id"], check["resource"]) for check in report["results"]["failed_checks"]
    ]
    assert failed == []
    assert report["summary"]["parsing_errors"] == 0
    assert report["summary"]["passed"] > 0
