"""`ServiceApi`: the service REST API served over HTTPS on a loopback port.

ca = CertificateAuthority.create("emulator CA")
server = ca.issue_server("localhost", "127.0.0.1")
context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
context.load_cert_chain(cert_path, key_path)
async with ServiceApi(context, hub_name="myhub") as api:
    rm = IoTHubRegistryManager.from_connection_string(api.connection_string())
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Self

from aiohttp import web

from bridge.logging import get_logger
from bridge_sim.errors import SimulatorError
from bridge_sim.iothub.faults import FaultInjector, RequestStats
from bridge_sim.iothub.quotas import Quotas, Tier
from bridge_sim.iothub.registry import Registry
from bridge_sim.iothub.rest import create_app
from bridge_sim.iothub.rest_base import HubContext, MethodInvoker

if TYPE_CHECKING:
    import ssl
    from types import TracebackType

__all__ = ["ServiceApi"]

_log = get_logger("sim.iothub.service")


class ServiceApi:
    """Serves the hub's REST API on `host:port` (0 picks a free port) until exited.

    Throttling is off unless `tier` ("F1", "S1", "S2", "S3") is given; pass `registry`,
    `quotas` and `faults` to share them with the device endpoint.
    """

    def __init__(
        self,
        ssl_context: ssl.SSLContext,
        *,
        hub_name: str = "myhub",
        host: str = "127.0.0.1",
        port: int = 0,
        registry: Registry | None = None,
        tier: Tier | None = None,
        units: int = 1,
        quotas: Quotas | None = None,
        faults: FaultInjector | None = None,
        method_invoker: MethodInvoker | None = None,
    ) -> None:
        self.ssl_context = ssl_context
        self.hub_name = hub_name
        self.host = host
        self._requested_port = port
        self.registry = registry or Registry(hub_name)
        self.context = HubContext(
            registry=self.registry,
            quotas=quotas or Quotas(tier, units),
            faults=faults or FaultInjector(),
            stats=RequestStats(),
            method_invoker=method_invoker,
        )
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    @property
    def port(self) -> int:
        if self._port is None:
            raise SimulatorError("ServiceApi is not serving; use `async with`")
        return self._port

    @property
    def host_name(self) -> str:
        """`host:port` as it goes in a connection string's HostName."""
        return f"{self.host}:{self.port}"

    @property
    def faults(self) -> FaultInjector:
        return self.context.faults

    @property
    def stats(self) -> RequestStats:
        return self.context.stats

    @property
    def quotas(self) -> Quotas:
        return self.context.quotas

    @quotas.setter
    def quotas(self, quotas: Quotas) -> None:
        self.context.quotas = quotas

    @property
    def method_invoker(self) -> MethodInvoker | None:
        return self.context.method_invoker

    @method_invoker.setter
    def method_invoker(self, invoker: MethodInvoker | None) -> None:
        self.context.method_invoker = invoker

    def connection_string(self, policy: str = "iothubowner") -> str:
        """A service connection string for `policy` pointing at this server."""
        try:
            key = self.registry.policies[policy].primary_key
        except KeyError as error:
            raise SimulatorError(f"no shared access policy named {policy!r}") from error
        return f"HostName={self.host_name};SharedAccessKeyName={policy};SharedAccessKey={key}"

    async def __aenter__(self) -> Self:
        runner = web.AppRunner(create_app(self.context), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self._requested_port, ssl_context=self.ssl_context)
        try:
            await site.start()
        except OSError as error:
            await runner.cleanup()
            raise SimulatorError(
                f"cannot serve the IoT Hub REST API on {self.host}:{self._requested_port}: {error}"
            ) from error
        self._port = site.port
        self._runner = runner
        _log.info("sim.iothub.service_serving", host=self.host, port=self._port, hub=self.hub_name)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            server = runner.server
            handlers = list(server.connections) if server is not None else []
            transports = [h.transport for h in handlers if h.transport is not None]
            await runner.cleanup()
            # TLS close waits for the client's close_notify, which idle SDK sessions never
            # send; abort what is left so nothing outlives the server.
            for transport in transports:
                transport.abort()
            for _ in range(3):
                await asyncio.sleep(0)
        self._port = None
