"""`/livez`, `/readyz`, `/metrics` and the status page on one small aiohttp server.

Live means the event loop answers; ready means every check of every service holds (see
each service's `ready`), so Kubernetes counts no success before the bridge does its job.
`/readyz` shows each check with its state, why it does not hold and its progress.
With a status board, `/` is the page people watch and `/status.json` what it shows.
With metrics, each `/readyz` and each scrape of `/metrics` also sets `bridge_ready` and
`bridge_ready_check{check}`, so Prometheus sees readiness without probing it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from bridge.core.service import Check
from bridge.daemon.status_page import StatusBoard, render_board, render_page
from bridge.logging import get_logger
from bridge.metrics import Metrics, record_readiness

__all__ = ["HealthServer"]

_log = get_logger("daemon.http")
_NO_CACHE = {"Cache-Control": "no-store"}
ReadyCheck = Callable[[], Awaitable[Mapping[str, Check]]]


class HealthServer:
    """Serves health and metrics until closed."""

    def __init__(
        self,
        registry: CollectorRegistry,
        ready: ReadyCheck,
        *,
        status: StatusBoard | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self._registry = registry
        self._ready = ready
        self._status = status
        self._metrics = metrics
        # A scrape waits this long for the checks: a check that hangs (a store not
        # answering) must make the bridge not ready, not make /metrics time out.
        self.ready_timeout = 2.0
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def start(self, host: str, port: int) -> None:
        """Listen on host:port (0 picks a free port, then `port` tells which)."""
        app = web.Application()
        app.router.add_get("/livez", self._livez)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/metrics", self._metrics_page)
        if self._status is not None:
            app.router.add_get("/", self._page)
            app.router.add_get("/status.json", self._status_json)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        sockets = self._runner.addresses
        self.port = int(sockets[0][1]) if sockets else port

    async def close(self) -> None:
        """Stop listening."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _livez(self, _request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def _checks(self) -> Mapping[str, Check]:
        checks = await self._ready()
        if self._metrics is not None:
            record_readiness(self._metrics, {name: check.ok for name, check in checks.items()})
        return checks

    async def _readyz(self, _request: web.Request) -> web.Response:
        checks = await self._checks()
        ready = all(check.ok for check in checks.values())
        body = {"ready": ready, "checks": {name: check.as_json() for name, check in checks.items()}}
        return web.json_response(body, status=200 if ready else 503)

    async def _metrics_page(self, _request: web.Request) -> web.Response:
        if self._metrics is not None:  # readiness as of this scrape
            try:
                async with asyncio.timeout(self.ready_timeout):
                    await self._checks()
            except TimeoutError:
                _log.warning("daemon.ready_check_timeout", seconds=self.ready_timeout)
                self._metrics.ready.set(0)
        body = generate_latest(self._registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _snapshot(self) -> dict[str, Any]:
        assert self._status is not None
        try:
            return await self._status.snapshot(await self._ready())
        except Exception as exc:  # the store went away: say so, and keep serving
            _log.warning("daemon.status_page_failed", error=str(exc))
            raise web.HTTPServiceUnavailable(text=f"the status cannot be read: {exc}") from exc

    async def _page(self, request: web.Request) -> web.Response:
        snap = await self._snapshot()
        # The page's script asks for the board alone, to redraw it without a reload.
        html = render_board(snap) if request.query.get("part") == "board" else render_page(snap)
        return web.Response(text=html, content_type="text/html", headers=_NO_CACHE)

    async def _status_json(self, _request: web.Request) -> web.Response:
        return web.json_response(await self._snapshot(), headers=_NO_CACHE)
