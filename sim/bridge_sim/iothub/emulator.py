"""The whole IoT Hub emulator: service REST API, device MQTT and AMQP, Event Hubs AMQP, Azurite.

One registry, one event log, one set of quotas and fault switches shared by every
endpoint, as in a real hub.

    async with IotHubEmulator(workdir=path) as hub:
        env = hub.env()   # IOTHUB_CONNECTION_STRING, IOTHUB_EVENTHUB_CONNECTION_STRING, ...
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from bridge.logging import get_logger
from bridge.plan.landing_zone import CONSUMER_GROUPS
from bridge_sim.azurite import Azurite
from bridge_sim.iothub.amqp import AMQPS_PORT, DeviceAmqpEndpoint
from bridge_sim.iothub.eventhub.log import EventLog
from bridge_sim.iothub.eventhub.server import AmqpEndpoint
from bridge_sim.iothub.faults import FaultInjector
from bridge_sim.iothub.mqtt import DeviceEndpoint, free_loopback_host, privileged_port_or_none
from bridge_sim.iothub.mqtt.websocket import WEBSOCKET_PORT
from bridge_sim.iothub.quotas import Quotas, Tier
from bridge_sim.iothub.registry import Registry
from bridge_sim.iothub.routing import MessageRouter, RoutingConfig
from bridge_sim.iothub.service import ServiceApi
from bridge_sim.pki import CertificateAuthority

__all__ = ["IotHubEmulator"]

log = get_logger("sim.iothub")


class IotHubEmulator:
    """Every IoT Hub endpoint the bridge and its devices talk to, on loopback.

    Args:
        workdir: Where certificates, Azurite's data and logs go.
        hub_name: The hub's name; devices see `<hub_name>.azure-devices.net`.
        tier: Quota tier ("S1", "S2", "S3", "F1"), or None for no throttling.
        units: Units of the tier.
        host: Address of the service and AMQP endpoints.
        gateway_host: Loopback address of the device endpoint. Devices dial port 8883
            (hard-coded in the SDKs), so each emulator needs an address of its own;
            by default a free 127.x.y.z is chosen.
        azurite: Start Azurite for blob storage (import/export jobs, checkpoints, storage
            routing endpoints).
        routing: Routes and custom endpoints (`routing.load_tfvars` reads a plan's); None
            sends every device message to `events`, as a hub without routes does.
    """

    def __init__(
        self,
        *,
        workdir: Path,
        hub_name: str = "myhub",
        tier: Tier | None = None,
        units: int = 1,
        host: str = "127.0.0.1",
        gateway_host: str | None = None,
        azurite: bool = True,
        routing: RoutingConfig | None = None,
    ) -> None:
        self.workdir = workdir
        self.hub_name = hub_name
        self.hostname = f"{hub_name}.azure-devices.net"
        self.host = host
        self.gateway_host = gateway_host
        self.ca = CertificateAuthority.create("Stand-in Azure IoT Hub Root CA")
        self.registry = Registry(hub_name, host_name=self.hostname)
        self.events = EventLog(hub_name=hub_name)
        self.quotas = Quotas(tier, units)
        self.faults = FaultInjector()
        self.service: ServiceApi | None = None
        self.amqp: AmqpEndpoint | None = None
        self.devices: DeviceEndpoint | None = None
        self.amqp_devices: DeviceAmqpEndpoint | None = None
        self.azurite: Azurite | None = Azurite(workdir=workdir / "azurite") if azurite else None
        self.ca_path = workdir / "iothub-root-ca.pem"
        self.routing = routing
        self.router: MessageRouter | None = None
        self._stack = contextlib.AsyncExitStack()

    def _server_context(self, *names: str) -> ssl.SSLContext:
        issued = self.ca.issue_server(*names)
        cert_path, key_path = issued.write(self.workdir / "tls", names[0].replace(":", "_"))
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(cert_path, key_path)
        return context

    async def __aenter__(self) -> Self:
        try:
            await self._start()
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._stack.aclose()

    async def _start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.ca_path.write_text(self.ca.cert_pem)
        tls = self._server_context("localhost", self.host, self.hostname)
        self.service = ServiceApi(
            tls,
            hub_name=self.hub_name,
            host=self.host,
            registry=self.registry,
            quotas=self.quotas,
            faults=self.faults,
        )
        await self._stack.enter_async_context(self.service)
        keys = {name: policy.primary_key for name, policy in self.registry.policies.items()}
        self.amqp = AmqpEndpoint(
            log=self.events,
            hub_name=self.hub_name,
            namespace=f"iothub-ns-{self.hub_name}",
            host=self.host,
            shared_access_keys=keys,
            # The consumer groups the landing zone creates (plan's Terraform variables).
            consumer_groups=CONSUMER_GROUPS,
        )
        await self._stack.enter_async_context(self.amqp)
        # MQTT's 8883, WebSockets' 443 and AMQP's 5671 on one address, as on a real hub;
        # 443 only where this process may listen below 1024 (root, CAP_NET_BIND_SERVICE).
        websocket_port = privileged_port_or_none(WEBSOCKET_PORT)
        if websocket_port is None:
            log.warning(
                "sim.iothub.websockets_not_served",
                reason=f"listening on port {WEBSOCKET_PORT} needs root or CAP_NET_BIND_SERVICE",
            )
        self.gateway_host = self.gateway_host or free_loopback_host(
            also=(AMQPS_PORT, *((websocket_port,) if websocket_port else ()))
        )
        device_cert = self.ca.issue_server(self.gateway_host, self.hostname)
        self.devices = DeviceEndpoint(
            registry=self.registry,
            events=self.events,
            cert_pem=device_cert.cert_pem,
            key_pem=device_cert.key_pem,
            host=self.gateway_host,
            quotas=self.quotas,
            faults=self.faults,
            websocket_port=websocket_port,
        )
        await self._stack.enter_async_context(self.devices)
        # IoT Hub's AMQP device endpoint on the same address, port 5671 (the SDKs' default).
        self.amqp_devices = DeviceAmqpEndpoint(
            registry=self.registry,
            events=self.events,
            ssl_context=self._server_context(self.gateway_host, self.hostname),
            host=self.gateway_host,
            port=AMQPS_PORT,
            quotas=self.quotas,
            faults=self.faults,
        )
        await self._stack.enter_async_context(self.amqp_devices)
        self.service.method_invoker = self._invoke_method
        self.service.context.events = self.events
        # As a hub with a route for TwinChangeEvents to the built-in endpoint (the reverse
        # path reads them there). Listeners run on the writer's thread: hand off to the loop.
        loop = asyncio.get_running_loop()

        def twin_changed(*change: Any) -> None:
            if not loop.is_closed():
                loop.call_soon_threadsafe(self.events.append_twin_change, *change)

        self._stack.callback(self.registry.add_twin_listener(twin_changed))
        self.service.context.devices = _Droppers(self.devices, self.amqp_devices)
        if self.azurite is not None:
            await self._stack.enter_async_context(self.azurite)
        self.router = await self._stack.enter_async_context(
            MessageRouter(
                events=self.events,
                registry=self.registry,
                entities=self.amqp.context.entities,
                storage_connection_string=self.azurite.connection_string if self.azurite else None,
            )
        )
        self.devices.hub.route = self.amqp_devices.hub.route = self.router.append
        self.service.context.routing = self.router
        if self.routing is not None:
            await self.router.configure(self.routing)
        log.info(
            "sim.iothub.started",
            service=self.service.host_name,
            amqp=f"{self.host}:{self.amqp.port}",
            devices=f"{self.gateway_host}:8883",
            amqp_devices=f"{self.gateway_host}:{AMQPS_PORT}",
        )

    async def _invoke_method(
        self, device_id: str, module_id: str | None, request: dict[str, Any]
    ) -> tuple[int, Any]:
        # Over whichever protocol the identity listens for methods on.
        assert self.devices is not None
        assert self.amqp_devices is not None
        if self.amqp_devices.methods_ready(device_id, module_id):
            return await self.amqp_devices.invoke_method(device_id, module_id, request)
        return await self.devices.invoke_method(device_id, module_id, request)

    async def send_c2d(
        self, device_id: str, body: bytes | str, properties: dict[str, str] | None = None
    ) -> str:
        """Deliver a cloud-to-device message over whichever protocol the device listens on."""
        assert self.devices is not None
        assert self.amqp_devices is not None
        if self.amqp_devices.c2d_ready(device_id):
            return await self.amqp_devices.send_c2d(device_id, body, properties)
        return await self.devices.send_c2d(device_id, body, properties)

    def env(self) -> dict[str, str]:
        """The settings clients need, under the names the bridge reads for real Azure."""
        assert self.service is not None
        assert self.amqp is not None
        env = {
            "IOTHUB_CONNECTION_STRING": self.service.connection_string("iothubowner"),
            "IOTHUB_EVENTHUB_CONNECTION_STRING": self.amqp.connection_string(
                "iothubowner", emulator_style=True
            ),
            "IOTHUB_ROOT_CA": str(self.ca_path),
            "IOTHUB_GATEWAY_HOST": str(self.gateway_host),
            "IOTHUB_HOSTNAME": self.hostname,
        }
        if self.azurite is not None:
            env["AZURE_STORAGE_CONNECTION_STRING"] = self.azurite.connection_string
        return env


class _Droppers:
    """The control API's connection drops reach both device endpoints (MQTT and AMQP)."""

    def __init__(self, mqtt: DeviceEndpoint, amqp: DeviceAmqpEndpoint) -> None:
        self._endpoints = (mqtt, amqp)

    def drop(self, device_id: str, module_id: str | None = None) -> bool:
        dropped = [endpoint.drop(device_id, module_id) for endpoint in self._endpoints]
        return any(dropped)

    def drop_all(self) -> int:
        return sum(endpoint.drop_all() for endpoint in self._endpoints)
