"""The plan step end to end: inventory in, landing zone variables and migration plan out."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bridge.files import write_atomically
from bridge.inventory import Inventory
from bridge.mapping.models import MigrationPlan, PlanFinding, PlanOptions
from bridge.plan.devices import plan_devices
from bridge.plan.gaps import find_gaps
from bridge.plan.landing_zone import landing_zone_tfvars
from bridge.plan.report import render_report
from bridge.plan.report_html import render_html_report
from bridge.plan.routes import plan_routes
from bridge.plan.rules import translate_topic_rules
from bridge.plan.sizing import choose_sizing

__all__ = [
    "PLAN_FILE",
    "REPORT_FILE",
    "REPORT_HTML_FILE",
    "TFVARS_FILE",
    "PlanResult",
    "build_plan",
    "write_plan",
]

TFVARS_FILE = "landing-zone.auto.tfvars.json"
PLAN_FILE = "migration-plan.json"
REPORT_FILE = "migration-plan.md"
REPORT_HTML_FILE = "migration-plan.html"  # the same report with charts, opens offline


@dataclass(frozen=True)
class PlanResult:
    """The migration plan and the Terraform variables that go with it."""

    plan: MigrationPlan
    tfvars: dict[str, Any]


def build_plan(inventory: Inventory, options: PlanOptions) -> PlanResult:
    """Plan the migration of every thing in the inventory; pure, no I/O."""
    # The translator takes rules as AWS's get_topic_rule returns them.
    translations = translate_topic_rules(
        {
            "ruleName": rule.name,
            "sql": rule.sql,
            "awsIotSqlVersion": rule.sql_version,
            "ruleDisabled": rule.disabled,
            "actions": rule.actions,
            "errorAction": rule.error_action,
        }
        for rule in inventory.rules
    )
    routing = plan_routes(translations)
    sizing = choose_sizing(len(inventory.things), options)
    devices = plan_devices(inventory, options)
    findings = [
        *sizing.findings,
        *(
            PlanFinding(severity="error", code="ROUTING_LIMIT", message=problem)
            for problem in routing.problems
        ),
    ]
    cas = sorted({d.auth.ca_certificate_id for d in devices if d.auth and d.auth.ca_certificate_id})
    if cas:
        findings.append(
            PlanFinding(
                severity="info",
                code="CA_REGISTRATION",
                message="upload these CA certificates to IoT Hub and verify them (proof of "
                f"possession) before cutting over their devices: {', '.join(cas)}",
            )
        )
    if any("$body" in (rule.condition or "") for rule in routing.rules if rule.route_name):
        findings.append(
            PlanFinding(
                severity="info",
                code="BODY_QUERY",
                message="some routes query the message body: IoT Hub evaluates $body only when "
                "the message has contentType application/json and contentEncoding utf-8, so the "
                "relay and migrated devices must set both",
            )
        )
    plan = MigrationPlan(
        inventory_schema_version=inventory.schema_version,
        account_id=inventory.account_id,
        region=inventory.region,
        options=options,
        sizing=sizing,
        devices=devices,
        rules=routing.rules,
        gaps=find_gaps(inventory, devices, routing.rules),
        findings=findings,
    )
    return PlanResult(plan=plan, tfvars=landing_zone_tfvars(inventory, options, sizing, routing))


def write_plan(result: PlanResult, output_dir: Path) -> list[Path]:
    """Write the plan files (Terraform variables, plan, report as Markdown and HTML), each
    atomically; returns their paths."""
    output_dir.mkdir(parents=True, exist_ok=True)
    files = {
        TFVARS_FILE: json.dumps(result.tfvars, indent=2, sort_keys=True) + "\n",
        PLAN_FILE: result.plan.model_dump_json(indent=2) + "\n",
        REPORT_FILE: render_report(result.plan),
        REPORT_HTML_FILE: render_html_report(result.plan),
    }
    paths = []
    for name, text in files.items():
        path = output_dir / name
        write_atomically(path, text)
        paths.append(path)
    return paths
