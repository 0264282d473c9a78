"""Shared helpers for the device endpoint tests, plus tests of the endpoint's set-up."""

from __future__ import annotations

import asyncio
import socket
import time
from contextlib import asynccontextmanager

import pytest
from azure.iot.device.aio import IoTHubDeviceClient

from bridge_sim.errors import SimulatorError
from bridge_sim.iothub.eventhub.log import EventLog
from bridge_sim.iothub.mqtt import DeviceEndpoint, free_loopback_host, privileged_port_or_none
from bridge_sim.iothub.mqtt.websocket import WEBSOCKET_PORT
from bridge_sim.iothub.registry import Registry
from bridge_sim.pki import CertificateAuthority

STEP = 10  # seconds any single SDK operation may take before the test fails
# The emulator serves MQTT over WebSockets on IoT Hub's port 443 only where it may listen
# there (root here and on CI; a user without CAP_NET_BIND_SERVICE gets no such endpoint).
needs_port_443 = pytest.mark.skipif(
    privileged_port_or_none(WEBSOCKET_PORT) is None,
    reason="MQTT over WebSockets is served on port 443, which needs root or CAP_NET_BIND_SERVICE",
)


def device_client(hub, device_id="d1", *, connection_string=None, **kwargs):
    """An SDK client for a registered SAS device that never retries on its own."""
    return IoTHubDeviceClient.create_from_connection_string(
        connection_string or hub.connection_string(device_id),
        server_verification_cert=hub.ca_pem,
        connection_retry=False,
        **kwargs,
    )


def release_paho_sockets(client):
    # paho-mqtt 1.6.1 wakes its loop through a localhost TCP socket pair that the SDK's
    # shutdown leaves open; closed late by the garbage collector, it fails a later test
    # with a ResourceWarning.
    stage = client._mqtt_pipeline._pipeline
    while stage is not None:
        transport = getattr(stage, "transport", None)
        if transport is not None:
            transport._mqtt_client._reset_sockets()
        stage = stage.next


async def shutdown(client):
    try:
        await asyncio.wait_for(client.shutdown(), STEP)
    finally:
        release_paho_sockets(client)


@asynccontextmanager
async def connected(client):
    try:
        await asyncio.wait_for(client.connect(), STEP)
        yield client
    finally:
        await shutdown(client)


async def refused(client, error_type):
    """Assert that connecting raises `error_type`; always shut the client down."""
    try:
        with pytest.raises(error_type):
            await asyncio.wait_for(client.connect(), STEP)
    finally:
        await shutdown(client)


async def set_handler(client, name, handler):
    # The aio client's handler setters wait for the SUBACK synchronously; on the loop that
    # also serves the endpoint that would deadlock, so set them from a worker thread.
    await asyncio.wait_for(asyncio.to_thread(setattr, client, name, handler), STEP)


async def eventually(predicate, timeout=STEP):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


def events_of(hub, device_id, source=None):
    stored = hub.events.read(hub.events.partition_for(device_id), 0, 10_000)
    return [e for e in stored if e.device_id == device_id and source in {None, e.message_source}]


def connection_ops(hub, device_id):
    return [
        e.properties["opType"] for e in events_of(hub, device_id, "deviceConnectionStateEvents")
    ]


def test_free_loopback_host_is_bindable_on_8883():
    host = free_loopback_host()
    assert host.startswith("127.")
    assert host != "127.0.0.1"
    with socket.socket() as probe:
        probe.bind((host, 8883))


def _endpoint(**kwargs):
    ca = CertificateAuthority.create("setup CA")
    server = ca.issue_server("127.0.0.1", "myhub.azure-devices.net")
    options = {
        "registry": Registry("myhub"),
        "events": EventLog(),
        "cert_pem": server.cert_pem,
        "key_pem": server.key_pem,
    }
    return DeviceEndpoint(**(options | kwargs))


def test_constructor_does_no_io_and_checks_the_hub_name():
    endpoint = _endpoint(host="127.0.0.1", port=8883)
    assert endpoint.connection("d1") is None
    with pytest.raises(SimulatorError):
        _endpoint(hub_hostname="otherhub.azure-devices.net")


async def test_start_up_failures_are_simulator_errors():
    with pytest.raises(SimulatorError):
        await _endpoint(key_pem="not a key").__aenter__()
    host = free_loopback_host()
    with socket.socket() as squatter:
        squatter.bind((host, 8883))
        squatter.listen()
        with pytest.raises(SimulatorError):
            await _endpoint(host=host).__aenter__()
