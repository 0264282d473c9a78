"""The status page's content without a browser: waves, reasons scrubbed, nothing fetched."""

import re
from datetime import UTC, datetime, timedelta

import aiohttp

from bridge.core.machine import Event
from bridge.core.service import Check
from bridge.core.store import ChangeSet, Wave, open_store
from bridge.core.view import DeviceView
from bridge.cutover.gauges import WaveGauges
from bridge.daemon.http import HealthServer
from bridge.daemon.status_page import StatusBoard, WaveProgress, render_page, waves_from_metrics
from bridge.metrics import Metrics


async def _fill(dsn):
    async with open_store(dsn) as store:
        await store.save_changes(
            ChangeSet(views=[DeviceView("ok-1"), DeviceView("bad-1")], sync={"ok-1", "bad-1"})
        )
        for item in await store.claim("w", 10, 30):
            if item.device_id == "bad-1":
                reason = "HostName=h;SharedAccessKeyName=x;SharedAccessKey=c2VjcmV0 refused"
                await store.finish(item, [Event.FAIL], fingerprint=None, reason=reason)
            else:
                await store.finish(item, [Event.PROVISION, Event.PROVISIONED], fingerprint="f")


async def test_the_page_shows_waves_scrubs_keys_and_links_nowhere(tmp_path):
    dsn = f"sqlite:///{tmp_path / 'bridge.db'}"
    await _fill(dsn)

    async def waves():
        return [WaveProgress("wave-1 (pilot)", "running", devices=10, on_azure=7, rolled_back=1)]

    async with StatusBoard(Metrics.create(), dsn, waves=waves) as board:
        snap = await board.snapshot({"mirror.store": Check(ok=True)})
        html = render_page(snap)
    assert snap["devices"]["mirrored"] == 1
    assert snap["ready"] is True
    assert snap["waves"][0]["on_azure"] == 7
    assert "wave-1 (pilot)" in html
    assert "width:70%" in html  # the wave's progress bar
    assert "c2VjcmV0" not in html
    assert "SharedAccessKey=***" in html
    assert not re.search(r"(src|href)\s*=|https?://|@import|url\(", html), "fetches something"


async def test_the_daemon_shows_the_waves_the_cutover_service_exports(tmp_path):
    dsn = f"sqlite:///{tmp_path / 'bridge.db'}"
    await _fill(dsn)
    metrics = Metrics.create()
    spec = {"devices": ["a", "b", "c", "d"]}
    async with open_store(dsn) as store:
        await store.add_wave(Wave("pilot", "running", spec), spec["devices"])
        await store.add_wave(Wave("canary", "done", spec), spec["devices"])
        for device, outcome in (("a", "cut_over"), ("b", "cut_over"), ("c", "rolled_back")):
            await store.record_outcome("pilot", device, outcome, "why")
        await WaveGauges(metrics).export(store, await store.waves())
    async with StatusBoard(metrics, dsn, waves=waves_from_metrics(metrics)) as board:
        snap = await board.snapshot()
    assert snap["waves"] == [
        {"name": "canary", "state": "done", "devices": 4, "on_azure": 0, "rolled_back": 0,
         "failed": 0},
        {"name": "pilot", "state": "running", "devices": 4, "on_azure": 2, "rolled_back": 1,
         "failed": 0},
    ]  # fmt: skip
    assert "width:50%" in render_page(snap)  # pilot: 2 of 4 on Azure


async def test_a_device_left_in_a_passing_state_too_long_needs_attention(tmp_path):
    dsn = f"sqlite:///{tmp_path / 'bridge.db'}"
    async with open_store(dsn) as store:
        await store.save_changes(ChangeSet(views=[DeviceView("slow-1")], sync={"slow-1"}))
        [item] = await store.claim("w", 10, 30)
        await store.finish(item, [Event.PROVISION], fingerprint=None)
    async with StatusBoard(Metrics.create(), dsn, stuck_after=0.0) as board:
        snap = await board.snapshot()
    [stuck] = snap["attention"]
    assert stuck["device_id"] == "slow-1"
    assert stuck["state"] == "provisioning"
    assert stuck["reason"].startswith("being created on Azure for ")
    assert any("stuck" in reason for reason in snap["verdict"]["reasons"])
    assert datetime.fromisoformat(stuck["since"]) > datetime.now(UTC) - timedelta(minutes=1)


class _Broken:
    async def snapshot(self, _checks):
        raise OSError("database is locked")


async def test_a_store_that_cannot_be_read_answers_503_and_the_server_keeps_serving():
    async def ready():
        return {}

    server = HealthServer(Metrics.create().registry, ready, status=_Broken())
    await server.start("127.0.0.1", 0)
    try:
        async with aiohttp.ClientSession(f"http://127.0.0.1:{server.port}") as client:
            for path in ("/", "/status.json"):
                async with client.get(path) as answer:
                    assert answer.status == 503
                    assert "database is locked" in await answer.text()
            async with client.get("/livez") as answer:
                assert answer.status == 200
    finally:
        await server.close()
