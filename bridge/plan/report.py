"""The migration plan as a Markdown report for the people running the migration."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from bridge.mapping.models import Gap, MigrationPlan, PlanFinding, RulePlan

__all__ = ["render_report"]

# Long device lists make the report unreadable; the JSON plan has them all.
_DEVICES_SHOWN = 20


def render_report(plan: MigrationPlan) -> str:
    """The whole report: summary, sizing, rules, gaps, devices needing a human."""
    sections = [
        _summary(plan),
        _sizing(plan),
        _rules(plan.rules),
        _gaps(plan.gaps),
        _humans(plan),
    ]
    return "\n\n".join(section.rstrip() for section in sections) + "\n"


def _summary(plan: MigrationPlan) -> str:
    needing = sum(1 for device in plan.devices if device.needs_human)
    auth = Counter(device.auth.type if device.auth else "none" for device in plan.devices)
    routed = sum(1 for rule in plan.rules if rule.route_name)
    lines = [
        f"# Migration plan: AWS {plan.account_id or 'account'} ({plan.region}) to Azure IoT Hub",
        "",
        f"Plan schema {plan.schema_version}, inventory schema {plan.inventory_schema_version}.",
        "",
        "| item | count |",
        "|---|---|",
        f"| devices | {len(plan.devices)} |",
        f"| devices ready | {len(plan.devices) - needing} |",
        f"| devices needing a human | {needing} |",
        *(f"| auth `{mode}` | {count} |" for mode, count in sorted(auth.items())),
        f"| rules routed | {routed} of {len(plan.rules)} |",
        f"| gaps | {len(plan.gaps)} |",
        f"| plan findings | {len(plan.findings)} |",
    ]
    if plan.findings:
        lines += ["", "Plan findings:", "", *_findings(plan.findings)]
    return "\n".join(lines)


def _sizing(plan: MigrationPlan) -> str:
    sizing = plan.sizing
    lines = [
        "## Sizing",
        "",
        (
            f"**{sizing.units} x {sizing.tier}**, {sizing.partitions} partitions on the "
            "built-in endpoint."
        ),
        "",
        *(f"- {line}" for line in sizing.explanation),
    ]
    return "\n".join(lines)


def _rules(rules: list[RulePlan]) -> str:
    lines = ["## Rules", ""]
    if not rules:
        return "\n".join([*lines, "No topic rules in the inventory."])
    lines += ["| rule | route | source | endpoints | enabled |", "|---|---|---|---|---|"]
    lines += [
        f"| {rule.rule_name} | {rule.route_name or '**none**'} | {rule.source or '-'} | "
        f"{', '.join(rule.endpoint_names) or '-'} | {'yes' if rule.enabled else 'no'} |"
        for rule in rules
    ]
    for rule in rules:
        lines += ["", f"### {rule.rule_name}", ""]
        if rule.route_name:
            lines.append(f"Route `{rule.route_name}` when `{rule.condition}`.")
        else:
            lines.append("No route; the reasons are below.")
        lines += [f"- {issue}" for issue in rule.issues]
        lines += [f"- by hand: {action}" for action in rule.manual_actions]
    return "\n".join(lines)


def _gaps(gaps: list[Gap]) -> str:
    lines = ["## Gaps: AWS features without a faithful Azure equivalent", ""]
    if not gaps:
        return "\n".join([*lines, "None."])
    for gap in gaps:
        lines += [
            f"### {gap.code}: {gap.title}",
            "",
            gap.detail,
            "",
            f"Recommendation: {gap.recommendation}",
        ]
        if gap.devices:
            lines += ["", f"Devices ({len(gap.devices)}): {_some(gap.devices)}"]
        if gap.resources:
            lines += ["", f"Resources: {_some(gap.resources)}"]
        lines.append("")
    return "\n".join(lines)


def _humans(plan: MigrationPlan) -> str:
    lines = ["## Devices needing a human", ""]
    needing = [device for device in plan.devices if device.needs_human]
    if not needing:
        return "\n".join([*lines, "None: every device can migrate as planned."])
    lines += ["| device | why |", "|---|---|"]
    lines += [
        f"| {device.thing_name} | "
        + "; ".join(
            _cell(f"{f.code}: {f.message}") for f in device.findings if f.severity == "error"
        )
        + " |"
        for device in needing
    ]
    return "\n".join(lines)


def _findings(findings: Iterable[PlanFinding]) -> list[str]:
    return [f"- {finding.severity} {finding.code}: {finding.message}" for finding in findings]


def _some(names: list[str]) -> str:
    shown = ", ".join(names[:_DEVICES_SHOWN])
    more = len(names) - _DEVICES_SHOWN
    return f"{shown} and {more} more" if more > 0 else shown


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
