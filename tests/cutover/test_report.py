"""`iot-bridge cutover report`: an HTML page from the store that parses, escapes, and is right.

The store is seeded the way the cutover service leaves it (outcomes, reasons, the job's
sent time); the page is read as HTML, then opened offline in Debian's chromium with
JavaScript off, as someone would open the file from a mail.
"""

import asyncio
import os
import shutil
import struct
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bridge.cli import app
from bridge.core.store import Wave, open_store
from bridge.cutover.wave import job_sent_key
from bridge.exit_codes import ExitCode

CHROMIUM = Path("/usr/bin/chromium")
HOSTILE = '<script>alert("pwned")</script> & <img src=x onerror=alert(1)>'
VOID = {"meta", "br", "img", "input", "link", "hr", "col", "area", "base", "wbr", "source"}


class Balanced(HTMLParser):
    """Fails on a closing tag that does not close the innermost open element."""

    def __init__(self):
        super().__init__()
        self.open = []
        self.scripts = 0
        self.text = []

    def handle_starttag(self, tag, _attrs):
        self.scripts += tag == "script"
        if tag not in VOID:
            self.open.append(tag)

    def handle_startendtag(self, tag, attrs):
        pass  # <rect ... /> and the like

    def handle_endtag(self, tag):
        assert self.open, f"</{tag}> closes nothing"
        assert self.open[-1] == tag, f"</{tag}> closes <{self.open[-1]}>"
        self.open.pop()

    def handle_data(self, data):
        self.text.append(data)


def parse(html):
    parser = Balanced()
    parser.feed(html)
    parser.close()
    assert parser.open == [], f"left open: {parser.open}"
    return parser


async def seed(dsn):
    """Wave canary: 4 of 5 on Azure after ~42 s (threshold 80%: met). Wave second: aborted."""
    async with open_store(dsn) as store:
        for name in [f"c-{i}" for i in range(5)] + [f"s-{i}" for i in range(5)]:
            await store.add_device(name)
        canary = {"devices": [f"c-{i}" for i in range(5)], "success_threshold": 0.8}
        await store.add_wave(
            Wave("canary", "done", canary, job_id="iot-bridge-cutover-canary"), canary["devices"]
        )
        await store.set_checkpoint(job_sent_key("canary"), str(time.time() - 42))
        for i in range(4):
            await store.record_outcome(
                "canary", f"c-{i}", "cut_over", "connected to Azure as itself"
            )
        await store.record_outcome(
            "canary", "c-4", "rolled_back", f"job execution REJECTED ({HOSTILE})"
        )
        await store.update_wave(
            "canary", state="done", reason="4 of 5 on Azure; success threshold met"
        )

        second = {"devices": [f"s-{i}" for i in range(5)], "abort_threshold": 0.3}
        await store.add_wave(Wave("second", "running", second), second["devices"])
        await store.set_checkpoint(job_sent_key("second"), str(time.time() - 10))
        for i in range(2):
            await store.record_outcome(
                "second",
                f"s-{i}",
                "rolled_back",
                "not seen on Azure by the deadline (no job execution)",
            )
        for i in range(2, 5):
            await store.record_outcome(
                "second", f"s-{i}", "left_on_aws", "wave aborting: job canceled; stays on AWS"
            )
        await store.update_wave(
            "second",
            state="aborted",
            reason="2 of 5 devices rolled back, past the abort threshold (30%)",
        )


@pytest.fixture
def dsn(tmp_path):
    dsn = f"sqlite:///{tmp_path / 'bridge.db'}"
    asyncio.run(seed(dsn))
    return dsn


def report(dsn, *args):
    return CliRunner().invoke(app, ["cutover", "report", *args], env={"BRIDGE_STORE__DSN": dsn})


def test_every_wave_parses_escapes_and_says_hold_after_an_abort(dsn, tmp_path):
    out = tmp_path / "report.html"
    result = report(dsn, "--out", str(out))
    assert result.exit_code == 0, result.output
    assert f"2 waves -> {out}" in result.output
    html = out.read_text()
    page = parse(html)
    # What the device said is shown as text, never as markup.
    assert "<script>" not in html
    assert "<img" not in html
    assert page.scripts == 0
    text = " ".join(" ".join(page.text).split())
    assert 'alert("pwned")' in text
    # The newest wave decides: it aborted.
    assert "Hold the next wave: wave second was aborted: 2 of 5 devices rolled back" in text
    assert "2 x not seen on Azure by the deadline (no job execution)" in text
    # Totals across waves, from the store.
    assert "data-kpi='cut_over'>4<" in html
    assert "data-kpi='rolled_back'>3<" in html
    assert "data-kpi='left_on_aws'>3<" in html
    assert "data-kpi='median'>42 s<" in html
    assert html.count("<svg") >= 5  # two outcome bars, a distribution and a timeline at least


def test_one_wave_that_met_its_threshold_clears_the_next(dsn, tmp_path):
    out = tmp_path / "canary.html"
    assert report(dsn, "canary", "-o", str(out)).exit_code == 0
    html = out.read_text()
    parse(html)
    assert "Clear for the next wave: wave canary met its success threshold." in html
    assert "4 of 5 devices on Azure (80%)" in html
    assert "data-threshold='success'>met<" in html
    assert "data-threshold='abort'>not passed<" in html
    assert "data-wave='second'" not in html


def test_an_unknown_wave_is_one_sentence_and_no_file(dsn, tmp_path):
    out = tmp_path / "none.html"
    result = report(dsn, "nope", "--out", str(out))
    assert result.exit_code == ExitCode.USAGE
    assert result.output.strip() == (
        "iot-bridge cutover report: no wave named 'nope': `iot-bridge cutover status` lists them"
    )
    assert not out.exists()


def png_size(path):
    width, height = struct.unpack(">II", path.read_bytes()[16:24])
    return width, height


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is missing")
async def test_the_report_opens_offline_in_chromium_without_javascript(dsn, tmp_path):
    from playwright.async_api import async_playwright, expect  # noqa: PLC0415 - browser tests only

    out = tmp_path / "report.html"
    result = await asyncio.to_thread(report, dsn, "--out", str(out))
    assert result.exit_code == 0, result.output
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM))
        context = await browser.new_context(
            java_script_enabled=False, viewport={"width": 1280, "height": 1600}
        )
        page = await context.new_page()
        requested = []
        page.on("request", lambda request: requested.append(request.url))
        await page.goto(out.as_uri())
        await expect(page.locator("#verdict")).to_contain_text("Hold the next wave")
        canary = page.locator("[data-wave=canary]")
        await expect(canary.locator("[data-outcome=cut_over]")).to_have_text("4")
        await expect(canary.locator("[data-threshold=success]")).to_have_text("met")
        second = page.locator("[data-wave=second]")
        await expect(second.locator("[data-threshold=abort]")).to_have_text("passed")
        await expect(second.locator("[data-outcome=left_on_aws]")).to_have_text("3")
        # The hostile reason is text on the page, not an element.
        await expect(canary).to_contain_text('<script>alert("pwned")</script>')
        assert await page.locator("img").count() == 0
        assert await page.locator("svg").count() >= 5
        shot = tmp_path / "cutover-report.png"
        await page.screenshot(path=shot, full_page=True)
        await browser.close()
    assert requested == [out.as_uri()], requested  # nothing fetched from anywhere
    width, height = png_size(shot)
    assert width == 1280
    assert height > 1000
    assert shot.stat().st_size > 30_000  # drawn, not blank
    if target := os.environ.get("CUTOVER_REPORT_SCREENSHOT"):  # to look at it
        shutil.copyfile(shot, target)


def test_no_wave_yet_is_a_page_that_says_so(tmp_path):
    dsn = f"sqlite:///{tmp_path / 'empty.db'}"

    async def create():
        async with open_store(dsn):
            pass

    asyncio.run(create())
    out = tmp_path / "empty.html"
    result = report(dsn, "--out", str(out))
    assert result.exit_code == 0, result.output
    html = out.read_text()
    parse(html)
    assert "No wave has run yet." in html
    assert "data-kpi" not in html  # no totals of nothing


def test_without_a_store_the_report_refuses_and_creates_none(tmp_path):
    dsn = f"sqlite:///{tmp_path / 'missing.db'}"
    result = report(dsn, "--out", str(tmp_path / "r.html"))
    assert result.exit_code == ExitCode.STARTUP_FAILED
    assert not (tmp_path / "missing.db").exists()
    assert not (tmp_path / "r.html").exists()
