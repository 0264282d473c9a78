"""`iot-bridge plan` writes an HTML report beside the Markdown: numbers, charts, offline."""

import re

from bridge.plan.planner import REPORT_HTML_FILE
from tests.plan.test_plan_cli import run, write_inventory

# Anything a browser would fetch: a URL, a linked file, a stylesheet import.
FETCHES = re.compile(r"https?://|(src|href)\s*=|@import|url\(", re.IGNORECASE)


def test_the_html_report_shows_the_plan_in_numbers_and_charts_and_fetches_nothing(tmp_path):
    inventory = write_inventory(tmp_path / "inv.json")
    result = run(inventory, "--output-dir", tmp_path)
    assert result.exit_code == 0, result.output
    assert f"wrote {tmp_path / REPORT_HTML_FILE}" in result.output
    html = (tmp_path / REPORT_HTML_FILE).read_text()
    assert html.startswith("<!doctype html>")
    assert not FETCHES.search(html), FETCHES.search(html)
    # The estate: two devices, one without a certificate that needs a human.
    assert "1 of 2 devices need a human" in html
    assert "<div class='n'>2</div><div class='l'>devices</div>" in html
    assert "<div class='n'>1 of 2</div><div class='l'>rules routed</div>" in html
    assert "no-cert" in html
    assert "NO_ACTIVE_CERTIFICATE" in html
    # Charts: devices by authentication, sizing against the quota, rules, gaps.
    assert html.count("<svg") >= 4
    assert "aria-label='devices by authentication'" in html
    assert "X.509, own certificate" in html
    assert "aria-label='expected messages against the daily quota'" in html
    assert "PRESENCE_TOPIC" in html
    assert "<td>presence</td><td><b>none</b></td>" in html
