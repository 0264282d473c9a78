"""A ready-to-use emulated hub for tests and benchmarks: CA, registry, event log, endpoint.

async with emulated_hub() as hub:
    connection_string = hub.add_sas_device("d1")
    client = IoTHubDeviceClient.create_from_connection_string(
        connection_string, server_verification_cert=hub.ca_pem)
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from bridge_sim.errors import SimulatorError
from bridge_sim.iothub.eventhub.log import EventLog
from bridge_sim.iothub.mqtt.endpoint import DeviceEndpoint
from bridge_sim.iothub.mqtt.loopback import free_loopback_host, privileged_port_or_none
from bridge_sim.iothub.mqtt.websocket import WEBSOCKET_PORT
from bridge_sim.iothub.registry import Registry
from bridge_sim.iothub.sas import generate_key
from bridge_sim.pki import CertificateAuthority

__all__ = ["EmulatedHub", "emulated_hub"]

_BIND_ATTEMPTS = 5


@dataclass
class EmulatedHub:
    """The parts of a running emulated hub a test drives."""

    ca: CertificateAuthority
    registry: Registry
    events: EventLog
    endpoint: DeviceEndpoint
    keys: dict[str, str] = field(default_factory=dict)

    @property
    def host(self) -> str:
        return self.endpoint.host

    @property
    def ca_pem(self) -> str:
        """The CA a device must trust (`server_verification_cert`)."""
        return self.ca.cert_pem

    def add_sas_device(self, device_id: str, *, status: str = "enabled") -> str:
        """Register a SAS device and return its connection string."""
        key = generate_key()
        body = {
            "status": status,
            "authentication": {
                "type": "sas",
                "symmetricKey": {"primaryKey": key, "secondaryKey": generate_key()},
            },
        }
        self.registry.put_device(device_id, body, None)
        self.keys[device_id] = key
        return self.connection_string(device_id)

    def add_sas_module(self, device_id: str, module_id: str) -> str:
        key = generate_key()
        body = {"authentication": {"type": "sas", "symmetricKey": {"primaryKey": key}}}
        self.registry.put_module(device_id, module_id, body, None)
        self.keys[f"{device_id}/{module_id}"] = key
        return self.connection_string(device_id, module_id)

    def connection_string(self, device_id: str, module_id: str | None = None) -> str:
        """`HostName=<hub>;DeviceId=..;[ModuleId=..;]SharedAccessKey=..;GatewayHostName=<ip>`."""
        module = f";ModuleId={module_id}" if module_id else ""
        key = self.keys[f"{device_id}/{module_id}" if module_id else device_id]
        return (
            f"HostName={self.registry.host_name};DeviceId={device_id}{module}"
            f";SharedAccessKey={key};GatewayHostName={self.host}"
        )


@asynccontextmanager
async def emulated_hub(
    hub_name: str = "myhub", **endpoint_options: Any
) -> AsyncIterator[EmulatedHub]:
    """Serve a fresh hub on a free loopback address; options go to `DeviceEndpoint`."""
    ca = CertificateAuthority.create(f"{hub_name} emulator CA")
    registry = Registry(hub_name)
    events = EventLog(hub_name=hub_name)
    endpoint = await _bind(ca, registry, events, endpoint_options)
    try:
        yield EmulatedHub(ca, registry, events, endpoint)
    finally:
        await endpoint.__aexit__(None, None, None)


async def _bind(
    ca: CertificateAuthority,
    registry: Registry,
    events: EventLog,
    options: dict[str, Any],
) -> DeviceEndpoint:
    websocket_port = privileged_port_or_none(WEBSOCKET_PORT)
    for attempt in range(_BIND_ATTEMPTS):
        host = free_loopback_host(also=(websocket_port,) if websocket_port else ())
        server = ca.issue_server(host, registry.host_name)
        endpoint = DeviceEndpoint(
            registry=registry,
            events=events,
            host=host,
            cert_pem=server.cert_pem,
            key_pem=server.key_pem,
            **{"websocket_port": websocket_port, **options},
        )
        try:
            return await endpoint.__aenter__()
        except SimulatorError:
            # Another process took the address between the probe and the bind.
            if attempt == _BIND_ATTEMPTS - 1:
                raise
    raise SimulatorError("unreachable")
