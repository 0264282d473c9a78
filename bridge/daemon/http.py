"""`/livez`, `/readyz` and `/metrics` on one small aiohttp server.

Live means the event loop answers; ready means every check of every service holds (see
each service's `ready`), so Kubernetes counts no success before the bridge does its job.
`/readyz` shows each check with its state, why it does not hold and its progress.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from bridge.core.service import Check

__all__ = ["HealthServer"]

ReadyCheck = Callable[[], Awaitable[Mapping[str, Check]]]


class HealthServer:
    """Serves health and metrics until closed."""

    def __init__(self, registry: CollectorRegistry, ready: ReadyCheck) -> None:
        self._registry = registry
        self._ready = ready
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def start(self, host: str, port: int) -> None:
        """Listen on host:port (0 picks a free port, then `port` tells which)."""
        app = web.Application()
        app.router.add_get("/livez", self._livez)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/metrics", self._metrics)
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

    async def _readyz(self, _request: web.Request) -> web.Response:
        checks = await self._ready()
        ready = all(check.ok for check in checks.values())
        body = {"ready": ready, "checks": {name: check.as_json() for name, check in checks.items()}}
        return web.json_response(body, status=200 if ready else 503)

    async def _metrics(self, _request: web.Request) -> web.Response:
        body = generate_latest(self._registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
