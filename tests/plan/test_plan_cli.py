"""`plan_command` as the lead registers it: files written, options honoured, bad input refused."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import typer
from typer.testing import CliRunner

from bridge.inventory.models import Certificate, Inventory, Shadow, Thing, TopicRule
from bridge.plan import plan_command
from bridge.plan.planner import PLAN_FILE, REPORT_FILE, REPORT_HTML_FILE, TFVARS_FILE
from bridge.x509 import thumbprints
from bridge_sim.pki import self_signed

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
app = typer.Typer()
app.command()(plan_command)


def certificate(thing):
    pem = self_signed(thing).cert_pem
    sha1, sha256 = thumbprints(pem)
    return Certificate(
        certificate_id=f"id-{thing}",
        arn=f"arn:aws:iot:us-east-1:1:cert/id-{thing}",
        status="ACTIVE",
        pem=pem,
        sha1_thumbprint=sha1,
        sha256_thumbprint=sha256,
        things=[thing],
    )


def write_inventory(path, things=None):
    ok_cert = certificate("ok")
    inventory = Inventory(
        certificates=[ok_cert],
        generated_at=NOW,
        region="us-east-1",
        account_id="123456789012",
        things=things
        if things is not None
        else [
            Thing(
                name="ok",
                principals=[ok_cert.arn],
                shadows=[Shadow(version=1, desired={"a": 1}, size_bytes=9)],
            ),
            Thing(name="no-cert"),
        ],
        rules=[
            TopicRule(
                name="telemetry",
                sql="SELECT * FROM 'fleet/+/data'",
                sql_version="2016-03-23",
                actions=[{"kinesis": {"streamName": "telemetry"}}],
            ),
            TopicRule(name="presence", sql="SELECT * FROM '$aws/events/presence/connected/+'"),
        ],
    )
    path.write_text(inventory.model_dump_json())
    return path


def run(*args):
    return CliRunner().invoke(app, [str(arg) for arg in args])


def test_writes_the_three_files_with_the_options_applied(tmp_path):
    inventory = write_inventory(tmp_path / "inv.json")
    out = tmp_path / "out"
    result = run(
        inventory,
        "--output-dir", out,
        "--tier", "S2",
        "--units", "3",
        "--auth", "sas",
        "--hub-name", "my-hub",
        "--location", "northeurope",
        "--resource-group", "rg-x",
        "--messages-per-device-per-day", "10",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    tfvars = json.loads((out / TFVARS_FILE).read_text())
    assert (tfvars["iothub_sku_name"], tfvars["iothub_sku_capacity"]) == ("S2", 3)
    assert (tfvars["iothub_name"], tfvars["location"], tfvars["resource_group_name"]) == (
        "my-hub",
        "northeurope",
        "rg-x",
    )
    plan = json.loads((out / PLAN_FILE).read_text())
    assert plan["schema_version"] == "1.0"
    assert plan["options"]["messages_per_device_per_day"] == 10
    assert {d["auth"]["type"] for d in plan["devices"]} == {"sas"}
    assert "2 devices (0 need a human)" in result.output


def test_the_report_names_rules_routes_reasons_and_devices_needing_a_human(tmp_path):
    inventory = write_inventory(tmp_path / "inv.json")
    assert run(inventory, "--output-dir", tmp_path).exit_code == 0
    report = (tmp_path / REPORT_FILE).read_text()
    for heading in ("## Sizing", "## Rules", "## Gaps", "## Devices needing a human"):
        assert heading in report
    assert "| telemetry | telemetry | DeviceMessages | eh-telemetry | yes |" in report
    assert "| presence | **none** |" in report
    assert "PRESENCE_TOPIC" in report
    assert "| no-cert | NO_ACTIVE_CERTIFICATE" in report
    assert "| ok |" not in report


def test_plans_are_identical_whatever_the_inventory_order(tmp_path):
    things = [Thing(name=name) for name in ("b", "a", "c")]
    first = write_inventory(tmp_path / "one.json", things)
    second = write_inventory(tmp_path / "two.json", list(reversed(things)))
    assert run(first, "-o", tmp_path / "1", "--auth", "sas").exit_code == 0
    assert run(second, "-o", tmp_path / "2", "--auth", "sas").exit_code == 0
    for name in (TFVARS_FILE, PLAN_FILE, REPORT_FILE, REPORT_HTML_FILE):
        assert (tmp_path / "1" / name).read_bytes() == (tmp_path / "2" / name).read_bytes()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        ('{"schema_version": "2.0", "things": []}', "schema version '2.0'"),
        ("{}", "schema version 'none'"),
        ("[]", "expected a JSON object"),
        ('{"schema_version": "1.0", "region": "x"}', "generated_at"),
    ],
)
def test_bad_inventories_are_refused_with_a_clear_message(tmp_path, content, message):
    path = tmp_path / "inv.json"
    path.write_text(content)
    result = run(path, "--output-dir", tmp_path / "out")
    assert result.exit_code == 3
    assert message in result.output
    assert not (tmp_path / "out").exists()


def test_a_missing_inventory_and_impossible_options_are_refused(tmp_path):
    missing = run(tmp_path / "nope.json")
    assert missing.exit_code == 3
    assert "cannot read inventory" in missing.output
    inventory = write_inventory(tmp_path / "inv.json")
    too_many = run(inventory, "--tier", "S3", "--units", "11", "-o", tmp_path / "o")
    assert too_many.exit_code == 3
    assert "at most 10 units" in too_many.output
    bad_name = run(inventory, "--hub-name", "no_underscores", "-o", tmp_path / "o")
    assert bad_name.exit_code == 3
    assert "hub name" in bad_name.output
