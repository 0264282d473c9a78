"""The migration plan as one HTML page with charts, for the people who decide; opens offline."""

from __future__ import annotations

from collections import Counter
from html import escape

from bridge.mapping.models import MigrationPlan
from bridge.reports import svg
from bridge.reports.html import document, table

__all__ = ["render_html_report"]

_DEVICES_SHOWN = 50  # the JSON plan has them all
_GREEN, _RED, _GREY = "#16a34a", "#dc2626", "#94a3b8"


def render_html_report(plan: MigrationPlan) -> str:
    """Summary, devices by authentication, sizing, rules, gaps, devices needing a human."""
    grid = f"<div class='grid2'>{_auth(plan)}{_sizing(plan)}</div>"
    body = _summary(plan) + grid + _rules(plan) + _gaps(plan) + _humans(plan)
    title = f"Migration plan: AWS {plan.account_id or 'account'} ({plan.region}) to Azure IoT Hub"
    subtitle = (
        f"plan schema {plan.schema_version}, inventory schema {plan.inventory_schema_version}"
    )
    return document(title, body, subtitle=subtitle)


def _kpi(value: object, label: str, tone: str = "") -> str:
    return (
        f"<div class='kpi {tone}'><div class='n'>{escape(str(value))}</div>"
        f"<div class='l'>{escape(label)}</div></div>"
    )


def _summary(plan: MigrationPlan) -> str:
    needing = sum(1 for device in plan.devices if device.needs_human)
    ready = len(plan.devices) - needing
    routed = sum(1 for rule in plan.rules if rule.route_name)
    if needing:
        verdict = (
            f"<div class='verdict hold'><b>{needing:,} of {len(plan.devices):,} devices need a "
            "human before they can move.</b> The others can migrate as planned; the devices "
            "and the reasons are listed below.</div>"
        )
    else:
        verdict = (
            f"<div class='verdict go'><b>All {len(plan.devices):,} devices can migrate as "
            "planned.</b> Check the gaps and the rules below before the first wave.</div>"
        )
    sizing = plan.sizing
    kpis = "".join(
        [
            _kpi(f"{len(plan.devices):,}", "devices"),
            _kpi(f"{ready:,}", "ready to migrate"),
            _kpi(f"{needing:,}", "need a human", "bad" if needing else ""),
            _kpi(
                f"{routed} of {len(plan.rules)}",
                "rules routed",
                "warn" if routed < len(plan.rules) else "",
            ),
            _kpi(len(plan.gaps), "gaps", "warn" if plan.gaps else ""),
            _kpi(f"{sizing.units} x {sizing.tier}", "IoT Hub size"),
        ]
    )
    bar = svg.stacked_bar(
        [("ready", ready, _GREEN), ("need a human", needing, _RED)], title="devices ready"
    )
    findings = "".join(
        f"<li><b>{escape(f.code)}</b>: {escape(f.message)}</li>" for f in plan.findings
    )
    notes = f"<h3>Plan findings</h3><ul>{findings}</ul>" if findings else ""
    return (
        f"{verdict}<div class='grid'>{kpis}</div><div class='card'><h2>Devices ready to "
        f"migrate</h2>{bar}<div class='legend'>{_key('ready', ready, _GREEN)}"
        f"{_key('need a human', needing, _RED)}</div>{notes}</div>"
    )


def _key(label: str, count: int, colour: str) -> str:
    return (
        f"<span><span class='sw' style='background:{colour}'></span>{escape(label)} "
        f"<b>{count:,}</b></span>"
    )


def _auth(plan: MigrationPlan) -> str:
    modes = Counter(device.auth.type if device.auth else "none" for device in plan.devices)
    words = {
        "selfSigned": "X.509, own certificate",
        "certificateAuthority": "X.509, issued by a CA",
        "sas": "SAS keys",
        "none": "not decided",
    }
    items = [(words.get(mode, mode), float(n)) for mode, n in modes.most_common()]
    chart = svg.hbar_chart(items, title="devices by authentication") if items else ""
    return (
        "<div class='card'><h2>Devices by authentication on Azure</h2>"
        f"{chart or '<p class=muted>No devices.</p>'}</div>"
    )


def _sizing(plan: MigrationPlan) -> str:
    sizing = plan.sizing
    use = [
        ("messages per day", float(sizing.messages_per_day)),
        ("daily quota", float(sizing.daily_quota)),
    ]
    chart = svg.hbar_chart(
        use,
        title="expected messages against the daily quota",
        colors=(svg.PALETTE[1], svg.PALETTE[0]),
    )
    share = 100 * sizing.messages_per_day / sizing.daily_quota if sizing.daily_quota else 0
    lines = "".join(f"<li>{escape(line)}</li>" for line in sizing.explanation)
    return (
        f"<div class='card'><h2>Sizing: {sizing.units} x {sizing.tier}, "
        f"{sizing.partitions} partitions</h2>{chart}"
        f"<p>Expected traffic uses <b>{share:.0f}%</b> of the daily message quota.</p>"
        f"<ul>{lines}</ul></div>"
    )


def _rules(plan: MigrationPlan) -> str:
    if not plan.rules:
        return "<div class='card'><h2>Rules</h2><p class='muted'>No topic rules.</p></div>"
    routed = sum(1 for rule in plan.rules if rule.route_name)
    bar = svg.stacked_bar(
        [("routed", routed, _GREEN), ("not routed", len(plan.rules) - routed, _RED)],
        title="rules routed",
    )
    rows = [
        [
            escape(rule.rule_name),
            escape(rule.route_name) if rule.route_name else "<b>none</b>",
            escape(", ".join(rule.endpoint_names) or "-"),
            "yes" if rule.enabled else "no",
            escape("; ".join([*rule.issues, *(f"by hand: {a}" for a in rule.manual_actions)])),
        ]
        for rule in plan.rules
    ]
    grid = table(["rule", "IoT Hub route", "endpoints", "enabled", "notes"], rows)
    legend = _key("routed", routed, _GREEN) + _key("not routed", len(plan.rules) - routed, _RED)
    return (
        f"<div class='card'><h2>AWS rules and their IoT Hub routes</h2>{bar}"
        f"<div class='legend'>{legend}</div>{grid}</div>"
    )


def _gaps(plan: MigrationPlan) -> str:
    if not plan.gaps:
        return (
            "<div class='card'><h2>Gaps</h2><p class='muted'>None: every AWS feature in use "
            "has an Azure equivalent.</p></div>"
        )
    affected = [(gap.code, float(len(gap.devices))) for gap in plan.gaps if gap.devices]
    chart = (
        "<h3>Devices affected per gap</h3>"
        + svg.hbar_chart(affected, title="devices affected per gap", colors=(svg.PALETTE[3],))
        if affected
        else ""
    )
    rows = [
        [
            f"<b>{escape(gap.code)}</b><br>{escape(gap.title)}",
            f"{len(gap.devices):,}",
            escape(gap.detail),
            escape(gap.recommendation),
        ]
        for gap in plan.gaps
    ]
    grid = table(["gap", "devices", "what", "what to do"], rows, numeric=frozenset({1}))
    return (
        "<div class='card'><h2>Gaps: AWS features without a faithful Azure equivalent</h2>"
        f"{chart}{grid}</div>"
    )


def _humans(plan: MigrationPlan) -> str:
    needing = [device for device in plan.devices if device.needs_human]
    if not needing:
        return ""
    rows = [
        [
            f"<code>{escape(device.thing_name)}</code>",
            escape(
                "; ".join(
                    f"{f.code}: {f.message}" for f in device.findings if f.severity == "error"
                )
            ),
        ]
        for device in needing[:_DEVICES_SHOWN]
    ]
    more = len(needing) - _DEVICES_SHOWN
    tail = f"<p class='muted'>and {more:,} more in the JSON plan.</p>" if more > 0 else ""
    return (
        f"<div class='card'><h2>Devices needing a human ({len(needing):,})</h2>"
        f"{table(['device', 'why'], rows)}{tail}</div>"
    )
