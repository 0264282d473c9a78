"""The relay's module connections give back every descriptor they took when they close.

azure-iot-device leaves paho's socket pair to the garbage collector; a relay that opens and
closes thousands of module connections over weeks must not depend on when (or in which
order) the collector runs. Measured through the process's open descriptors, with the
collector off so that only an explicit close can give them back.
"""

from __future__ import annotations

import asyncio
import base64
import gc
import socket
import time
from pathlib import Path

from azure.iot.device.aio import IoTHubModuleClient

from bridge.azure import RateBudget
from bridge.azure.models import DeviceIdentity
from bridge.azure.module_client import _paho_client, guard_socket_pair
from bridge.azure.telemetry import ModuleSender


def _open_descriptors() -> int:
    return len(list(Path("/proc/self/fd").iterdir()))


async def test_closing_the_pool_releases_every_connection_descriptor(env, service):
    devices = [f"fd-{i}" for i in range(4)]
    for device_id in devices:
        await service.create_or_update_device(DeviceIdentity(device_id))
        await service.create_or_update_module(device_id, "aws-bridge")
    ca_pem = Path(env["IOTHUB_ROOT_CA"]).read_text()

    async def one_round() -> None:
        sender = ModuleSender(
            service,
            "aws-bridge",
            budget=RateBudget.unlimited(),
            host_name=env["IOTHUB_HOSTNAME"],
            gateway_host=env["IOTHUB_GATEWAY_HOST"],
            ca_pem=ca_pem,
        )
        try:
            for device_id in devices:
                await sender.send(device_id, b"{}", message_id=device_id, properties={})
            assert sender.open_connections == len(devices)
        finally:
            await sender.close()

    await one_round()  # warms up what lives for the process (the SDK's pipeline threads)
    gc.collect()
    gc.disable()
    try:
        before = _open_descriptors()
        await one_round()
        # The emulator serves from this process too, and closes its side of each connection
        # a moment after the client closed: wait for it (a leak never settles).
        deadline = time.monotonic() + 10
        while (after := _open_descriptors()) != before and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
    finally:
        gc.enable()
    assert after == before, f"{after - before} descriptors left open by 4 closed connections"


def test_a_new_connection_closes_the_socket_pair_a_dropped_one_left(env):
    # After a drop the SDK stops paho's thread from inside it and clears `_thread`, leaving
    # the pair; its next connect calls loop_start, which makes a new pair over the old one.
    client = IoTHubModuleClient.create_from_connection_string(
        f"HostName={env['IOTHUB_HOSTNAME']};DeviceId=d;ModuleId=m;SharedAccessKey="
        + base64.b64encode(b"k" * 32).decode(),
        connection_retry=False,
    )
    paho = _paho_client(client)
    assert paho is not None
    guard_socket_pair(client)
    left_r, left_w = socket.socketpair()
    paho._sockpairR, paho._sockpairW = left_r, left_w  # what the dropped connection left
    paho.loop_start()
    try:
        assert left_r.fileno() == -1
        assert left_w.fileno() == -1
        assert paho._sockpairR is not None
        assert paho._sockpairR is not left_r
    finally:
        paho.loop_stop()
        paho._reset_sockets(sockpair_only=True)
