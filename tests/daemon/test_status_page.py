"""The status page in a real browser: Debian's chromium driven by Playwright, offline.

The daemon runs in-process against the stand-ins; the page must show the numbers the store
holds, redraw itself as devices move (no reload), name a refused device with its reason,
and fetch nothing from anywhere but the bridge.
"""

import asyncio
import contextlib
import json
import os
import re
import shutil
import struct
from pathlib import Path

import aiohttp
import pytest
from playwright.async_api import async_playwright, expect

from bridge.config import CloudSettings
from bridge.core.store import open_store
from bridge.daemon.app import RunOptions, build_daemon
from bridge.daemon.http import HealthServer
from bridge.daemon.status_page import StatusBoard, WaveProgress
from bridge.metrics import Metrics
from tests.daemon.parity import aws_clients
from tests.daemon.test_run import bridge_settings

CHROMIUM = Path("/usr/bin/chromium")
VIEWPORT = {"width": 1280, "height": 1100}

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Debian's chromium is missing (scripts/install-system-deps)"
)


def _shadow(data, thing, desired, name=None):
    body = json.dumps({"state": {"desired": desired}}).encode()
    kwargs = {"thingName": thing, "payload": body} | ({"shadowName": name} if name else {})
    data.update_thing_shadow(**kwargs)


@contextlib.asynccontextmanager
async def running(env, settings):
    daemon = build_daemon(CloudSettings(**env), settings, RunOptions())
    task = asyncio.create_task(daemon.serve())
    try:
        async with asyncio.timeout(60):
            await daemon.started.wait()
        yield daemon
    finally:
        daemon.should_exit.set()
        async with asyncio.timeout(60):
            await task


async def until_status(url, check, timeout=60.0):
    """Poll /status.json until `check(status)` holds; return that status."""
    async with aiohttp.ClientSession() as client, asyncio.timeout(timeout):
        while True:
            async with client.get(url) as answer:
                status = await answer.json()
            if check(status):
                return status
            await asyncio.sleep(0.2)


def secret_values(env):
    """The keys in the settings: AWS secret key, keys inside connection strings."""
    found = [v for k, v in env.items() if "SECRET" in k and v]
    for name, value in env.items():
        if "CONNECTION_STRING" in name and value:
            found += re.findall(r"(?:SharedAccessKey|AccountKey)=([^;]+)", value)
    assert found, "the stand-ins' settings carry no key to look for"
    return found


def png_size(path):
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return struct.unpack(">II", head[16:24])


async def test_the_status_page_shows_the_fleet_and_follows_it_live(stack, tmp_path):
    env = stack.env()
    iot, data = aws_clients(env)
    # boto3 keeps its connections to the AWS stand-in pooled until closed.
    with contextlib.closing(iot), contextlib.closing(data):
        await _watch_the_page(stack, tmp_path, env, iot, data)


async def _watch_the_page(stack, tmp_path, env, iot, data):
    for i in range(3):
        iot.create_thing(thingName=f"sp-{i}")
        _shadow(data, f"sp-{i}", {"rate": i})
    # Five named shadows of 7 KB each are fine on AWS (8 KB per shadow) but make a desired
    # section over IoT Hub's 32 KB: IoT Hub refuses the twin and the device is FAILED.
    iot.create_thing(thingName="sp-big")
    for n in range(5):
        _shadow(data, "sp-big", {"blob": "x" * 7000}, name=f"part{n}")
    settings = bridge_settings(tmp_path)
    base = f"http://127.0.0.1:{settings.http.port}"

    async with running(env, settings), async_playwright() as playwright:
        status = await until_status(
            f"{base}/status.json",
            lambda s: s["devices"]["mirrored"] == 3 and s["devices"]["failed"] == 1,
        )
        assert status["total"] == 4
        assert status["waves"] == []  # the cutover service runs; no wave planned
        assert status["verdict"]["go"] is False

        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM))
        page = await browser.new_page(viewport=VIEWPORT)
        requested = []
        page.on("request", lambda request: requested.append(request.url))
        answer = await page.goto(base + "/")
        assert answer is not None
        assert answer.status == 200

        # The numbers of the known state.
        await expect(page.locator("[data-state=mirrored]")).to_have_text("3")
        await expect(page.locator("[data-state=failed]")).to_have_text("1")
        await expect(page.locator("[data-kpi=total]")).to_have_text("4")
        await expect(page.locator("[data-kpi=on_azure]")).to_have_text("3")
        await expect(page.locator("[data-kpi=attention]")).to_have_text("1")
        # The refused device, with IoT Hub's reason in plain words.
        attention = page.locator("#attention")
        await expect(attention).to_contain_text("sp-big")
        await expect(attention).to_contain_text("over IoT Hub's 32768")
        await expect(page.locator("#verdict")).to_contain_text("Hold the next wave")
        await expect(page.locator("#waves")).to_contain_text("No waves yet")
        assert await page.locator("svg").count() >= 3  # state bar, throughput, lag

        # Devices move: the page redraws itself, without a reload.
        await page.evaluate("window.loadedOnce = true")
        for i in range(3, 6):
            iot.create_thing(thingName=f"sp-{i}")
        await expect(page.locator("[data-state=mirrored]")).to_have_text("6", timeout=60_000)
        await expect(page.locator("[data-kpi=total]")).to_have_text("7")
        assert await page.evaluate("window.loadedOnce") is True
        # Every write that landed (six devices) is counted, and its lag measured, within the minute.
        await until_status(
            f"{base}/status.json",
            lambda s: s["throughput"]["last_minute"] >= 6 and s["lag"]["p99"] is not None,
        )
        await expect(page.locator("[data-kpi=applied]")).not_to_have_text("0", timeout=10_000)
        await expect(page.locator("[data-kpi=lag]")).not_to_contain_text("n/a", timeout=10_000)

        # Nothing secret: no key from the settings shows anywhere on the page or in its data.
        shown = await page.content() + json.dumps(status)
        for secret in secret_values(env):
            assert secret not in shown

        shot = tmp_path / "status-page.png"
        await page.screenshot(path=shot)
        await browser.close()

    assert png_size(shot) == (VIEWPORT["width"], VIEWPORT["height"])
    assert shot.stat().st_size > 20_000  # a drawn page, not a blank one
    assert requested, "the page made no request at all"
    assert all(url.startswith(base) for url in requested), requested
    if target := os.environ.get("STATUS_PAGE_SCREENSHOT"):  # refreshes docs/status-page.png
        shutil.copyfile(shot, target)


async def test_waves_appear_and_progress_on_the_page_without_a_reload(tmp_path):
    dsn = f"sqlite:///{tmp_path / 'bridge.db'}"
    async with open_store(dsn):
        pass  # an empty store, as the mirror leaves it before the first device
    waves = []

    async def current_waves():
        return list(waves)

    async def ready():
        return {}

    async with StatusBoard(Metrics.create(), dsn, waves=current_waves) as board:
        server = HealthServer(Metrics.create().registry, ready, status=board)
        await server.start("127.0.0.1", 0)
        try:
            async with async_playwright() as playwright:
                browser = await playwright.chromium.launch(executable_path=str(CHROMIUM))
                page = await browser.new_page(viewport=VIEWPORT)
                await page.goto(f"http://127.0.0.1:{server.port}/")
                await expect(page.locator("#waves")).to_contain_text("No waves yet")
                waves.append(WaveProgress("pilot", "running", devices=20, on_azure=5))
                row = page.locator("#waves tbody tr")
                await expect(row).to_contain_text("pilot", timeout=15_000)
                await expect(row).to_contain_text("running")
                waves[0] = WaveProgress("pilot", "done", devices=20, on_azure=19, rolled_back=1)
                await expect(row).to_contain_text("done", timeout=15_000)
                await expect(row.locator(".bar i")).to_have_attribute("style", "width:95%")
                await browser.close()
        finally:
            await server.close()
