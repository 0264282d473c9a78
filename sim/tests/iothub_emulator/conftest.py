"""One emulated hub per test module, served from a background event loop thread.

The azure-iot-hub SDK is synchronous, so tests call it directly while the server runs on
its own loop; the registry is thread-safe and is reset before every test.
"""

from __future__ import annotations

import asyncio
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from azure.iot.hub import IoTHubRegistryManager

from bridge_sim.iothub.quotas import Quotas
from bridge_sim.iothub.sas import generate_token
from bridge_sim.iothub.service import ServiceApi
from bridge_sim.pki import CertificateAuthority


@dataclass
class RunningHub:
    api: ServiceApi
    ca_path: Path
    loop: asyncio.AbstractEventLoop

    @property
    def base_url(self) -> str:
        return f"https://{self.api.host_name}"

    def token(self, policy: str = "iothubowner", **kwargs: Any) -> str:
        key = self.api.registry.policies[policy].primary_key
        return generate_token(self.api.host_name, key, key_name=policy, **kwargs)

    def raw(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        api_version: str | None = "2021-04-12",
        **kwargs: Any,
    ) -> requests.Response:
        """A request the SDK cannot make: odd bodies, bad tokens, control routes."""
        headers = kwargs.pop("headers", {})
        headers.setdefault("Authorization", token if token is not None else self.token())
        params = {"api-version": api_version} if api_version else {}
        return requests.request(
            method,
            self.base_url + path,
            params=params,
            headers=headers,
            verify=str(self.ca_path),
            timeout=10,
            **kwargs,
        )

    def registry_manager(self, policy: str = "iothubowner") -> IoTHubRegistryManager:
        manager = IoTHubRegistryManager.from_connection_string(self.api.connection_string(policy))
        manager.protocol.config.connection.verify = str(self.ca_path)
        return manager


def _server_context(directory: Path) -> tuple[ssl.SSLContext, Path]:
    ca = CertificateAuthority.create("iothub emulator test CA")
    ca_path, _ = ca.write(directory)
    cert_path, key_path = ca.issue_server("localhost", "127.0.0.1").write(directory, "server")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_path, key_path)
    return context, ca_path


@pytest.fixture(scope="module")
def running_service_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHub]:
    context, ca_path = _server_context(tmp_path_factory.mktemp("iothub-pki"))
    api = ServiceApi(context, hub_name="myhub")
    loop = asyncio.new_event_loop()
    started = threading.Event()
    stop = asyncio.Event()

    async def serve() -> None:
        async with api:
            started.set()
            await stop.wait()

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    assert started.wait(10), "the emulator did not start"
    yield RunningHub(api=api, ca_path=ca_path, loop=loop)
    loop.call_soon_threadsafe(stop.set)
    thread.join(10)
    loop.close()


@pytest.fixture
def service_hub(running_service_hub: RunningHub) -> RunningHub:
    running_service_hub.api.registry.reset()
    running_service_hub.api.faults.clear()
    running_service_hub.api.stats.clear()
    running_service_hub.api.quotas = Quotas(None)
    running_service_hub.api.method_invoker = None
    return running_service_hub


@pytest.fixture
def rm(service_hub: RunningHub) -> IoTHubRegistryManager:
    return service_hub.registry_manager()
