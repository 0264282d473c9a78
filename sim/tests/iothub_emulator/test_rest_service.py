"""ServiceApi as an async context manager, driven from the test's own event loop."""

from __future__ import annotations

import asyncio
import socket
import ssl

import pytest
from azure.iot.hub import IoTHubRegistryManager

from bridge_sim.errors import SimulatorError
from bridge_sim.iothub.service import ServiceApi
from bridge_sim.pki import CertificateAuthority


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    directory = tmp_path_factory.mktemp("service-pki")
    ca = CertificateAuthority.create("service test CA")
    ca_path, _ = ca.write(directory)
    cert_path, key_path = ca.issue_server("localhost", "127.0.0.1").write(directory, "server")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_path, key_path)
    return context, ca_path


def test_constructor_does_no_io(tls):
    api = ServiceApi(tls[0], hub_name="myhub")
    with pytest.raises(SimulatorError):
        _ = api.port
    with pytest.raises(SimulatorError):
        api.connection_string("nobody")


async def test_serves_the_sdk_over_tls_and_stops(tls):
    context, ca_path = tls
    async with ServiceApi(context, hub_name="myhub") as api:
        connection_string = api.connection_string()
        assert connection_string.startswith(f"HostName=127.0.0.1:{api.port};")
        assert ";SharedAccessKeyName=iothubowner;SharedAccessKey=" in connection_string

        def create_and_list() -> list[str]:
            manager = IoTHubRegistryManager.from_connection_string(connection_string)
            manager.protocol.config.connection.verify = str(ca_path)
            manager.create_device_with_sas("async-1", None, None, "enabled")
            return [device.device_id for device in manager.get_devices()]

        assert await asyncio.to_thread(create_and_list) == ["async-1"]
        assert api.registry.identity("async-1").enabled
        port = api.port
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0


async def test_busy_port_is_a_simulator_error(tls):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        busy = holder.getsockname()[1]
        with pytest.raises(SimulatorError, match="cannot serve"):
            async with ServiceApi(tls[0], port=busy):
                pass
