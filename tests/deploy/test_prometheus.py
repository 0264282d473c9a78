"""Alert rules and dashboard queries name only metrics the daemon exports, and alerts fire right.

The metric names come from `Metrics.create()` on a fresh registry, so a metric renamed or
removed in bridge/metrics.py fails here before a dashboard goes blank in production.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import generate_latest

from bridge.metrics import Metrics
from tests.deploy.helpers import DEPLOY

PROMETHEUS = DEPLOY / "prometheus"
DASHBOARD = DEPLOY / "grafana" / "iot-bridge.json"
# Series the daemon does not export but the rules may use, and who makes them.
EXTERNAL = {"up": "Prometheus, per scrape target"}
SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
}
KEYWORDS = {
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right",
    "bool", "offset", "inf", "nan",
}  # fmt: skip
GRAFANA_RANGES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "6h"}


def exported_names() -> set[str]:
    """Every sample name the daemon can expose, from a fresh registry."""
    metrics = Metrics.create()
    names = set()
    for family in metrics.registry.collect():
        base = family.name
        names.update(base + suffix for suffix in SUFFIXES[family.type])
    # Cross-check with the text exposition: what it shows now must be among them.
    shown = {
        line.split("{")[0].split(" ")[0]
        for line in generate_latest(metrics.registry).decode().splitlines()
        if line and not line.startswith("#")
    }
    assert shown <= names, shown - names
    return names


def metric_names(expr: str) -> set[str]:
    """Metric names a PromQL expression selects (strings, matchers, ranges and functions out)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    grouping = r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)"
    text = re.sub(grouping, " ", text, flags=re.IGNORECASE)
    names = set()
    for match in re.finditer(r"(?<![\w.:$])[a-zA-Z_:][a-zA-Z0-9_:]*", text):
        rest = text[match.end() :].lstrip()
        if rest.startswith("(") or match.group().lower() in KEYWORDS:
            continue
        names.add(match.group())
    return names


def alert_rules() -> list[dict[str, Any]]:
    document = yaml.safe_load((PROMETHEUS / "alerts.yaml").read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def dashboard_queries() -> list[tuple[str, str]]:
    found = []

    def walk(panels: list[dict[str, Any]]) -> None:
        for panel in panels:
            walk(panel.get("panels", []))
            found.extend((panel["title"], t["expr"]) for t in panel.get("targets", []))

    walk(json.loads(DASHBOARD.read_text())["panels"])
    variables = json.loads(DASHBOARD.read_text())["templating"]["list"]
    found.extend((v["name"], v["query"]) for v in variables if v["type"] == "query")
    return found


def test_metric_name_extraction():
    expr = (
        'histogram_quantile(0.99, sum by (le) (rate(bridge_event_lag_seconds_bucket{job="a"}'
        "[$__rate_interval]))) > 10 and on (instance) max without (state) "
        '(bridge_devices{state=~"x|y"} offset 5m) unless absent(up)'
    )
    assert metric_names(expr) == {"bridge_event_lag_seconds_bucket", "bridge_devices", "up"}


@pytest.mark.parametrize(
    "expr",
    [
        "rate(bridge_cutover_waves_total[5m])",  # not exported (yet)
        "bridge_event_lag_seconds_total",  # a histogram has no _total
        "sum(bridge_devices_total)",  # a gauge has no _total
    ],
)
def test_checker_rejects_metrics_the_daemon_does_not_export(expr):
    assert metric_names(expr) - exported_names()


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda r: r["alert"])
def test_alert_names_only_exported_metrics(rule):
    unknown = metric_names(rule["expr"]) - exported_names() - set(EXTERNAL)
    assert not unknown, f"{rule['alert']}: {unknown}"


def test_dashboard_names_only_metrics_the_daemon_exports():
    queries = dashboard_queries()
    assert len(queries) >= 15
    for title, expr in queries:
        names = metric_names(expr)
        assert names, f"{title}: no metric in {expr}"
        assert names <= exported_names(), f"{title}: {names - exported_names()}"


def test_dashboard_covers_every_exported_metric():
    used = set().union(*(metric_names(expr) for _, expr in dashboard_queries()))
    bases = {
        family.name
        for family in Metrics.create().registry.collect()
        if not any(name.startswith(family.name) for name in used)
    }
    assert not bases, f"not on the dashboard: {bases}"


def test_dashboard_has_rows_left_for_relay_and_cutover():
    titles = [p["title"] for p in json.loads(DASHBOARD.read_text())["panels"] if p["type"] == "row"]
    assert any(t.startswith("Relay") for t in titles)
    assert any(t.startswith("Cutover") for t in titles)


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.skip("promtool is absent: scripts/install-system-deps installs Debian's prometheus")
    return found


def run_promtool(*args: str, cwd: Path) -> str:
    result = subprocess.run(  # noqa: S603 - promtool on our own files
        [promtool(), *args], cwd=cwd, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


def test_promtool_checks_the_rules():
    assert "SUCCESS: 16 rules found" in run_promtool(
        "check", "rules", "alerts.yaml", cwd=PROMETHEUS
    )


def test_promtool_unit_tests_pass():
    assert "SUCCESS" in run_promtool("test", "rules", "alerts_test.yaml", cwd=PROMETHEUS)


def test_promtool_unit_tests_fail_when_an_alert_breaks(tmp_path):
    """The unit tests can fail: a FAILED alert on the wrong label value is caught."""
    broken = (PROMETHEUS / "alerts.yaml").read_text().replace('state="failed"', 'state="FAILED"')
    (tmp_path / "alerts.yaml").write_text(broken)
    shutil.copy(PROMETHEUS / "alerts_test.yaml", tmp_path)
    result = subprocess.run(  # noqa: S603 - promtool on a copy of our own files
        [promtool(), "test", "rules", "alerts_test.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "IotBridgeDevicesFailed" in result.stdout + result.stderr


def test_every_alert_has_a_unit_test():
    tests = yaml.safe_load((PROMETHEUS / "alerts_test.yaml").read_text())["tests"]
    tested = {case["alertname"] for test in tests for case in test["alert_rule_test"]}
    assert tested == {rule["alert"] for rule in alert_rules()}


def test_dashboard_queries_parse(tmp_path):
    """promtool parses each dashboard query, as a recording rule, Grafana's ranges filled in."""
    rules = []
    for index, (_, expr) in enumerate(dashboard_queries()):
        for variable, value in GRAFANA_RANGES.items():
            expr = expr.replace(variable, value)  # noqa: PLW2901 - substituted copy
        rules.append({"record": f"dashboard:query_{index}", "expr": expr})
    path = tmp_path / "dashboard_rules.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    run_promtool("check", "rules", str(path), cwd=tmp_path)


def test_prometheus_config_is_valid(tmp_path):
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    assert config["rule_files"] == ["/etc/prometheus/alerts.yaml"]
    (job,) = config["scrape_configs"]
    assert job["job_name"] == "iot-bridge"  # the alerts select job="iot-bridge"
    # promtool resolves rule_files from the config's folder: point it at the real file.
    config["rule_files"] = [str(PROMETHEUS / "alerts.yaml")]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    run_promtool("check", "config", "prometheus.yml", cwd=tmp_path)
