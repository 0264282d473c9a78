"""Direct methods: the REST seam (`DeviceEndpoint.invoke_method`) and the service SDK."""

from __future__ import annotations

import asyncio
import ssl
import threading
import time
from contextlib import asynccontextmanager

import pytest
from azure.iot.device import MethodResponse
from azure.iot.hub import IoTHubRegistryManager
from azure.iot.hub.models import CloudToDeviceMethod

from bridge_sim.iothub.errors import IoTHubError
from bridge_sim.iothub.mqtt.harness import emulated_hub
from bridge_sim.iothub.mqtt.topics import METHODS_FILTER
from bridge_sim.iothub.service import ServiceApi
from iothub_emulator.test_device_harness import (
    STEP,
    connected,
    device_client,
    eventually,
    set_handler,
)


@pytest.fixture
async def hub():
    async with emulated_hub() as running:
        yield running


def echo_handler(client, loop, *, answer=True):
    async def reply(request):
        response = MethodResponse.create_from_method_request(
            request, 200, {"method": request.name, "echo": request.payload}
        )
        await client.send_method_response(response)

    def handler(request):
        # Handlers run on the SDK's thread; the reply is sent from the test's loop.
        if answer:
            asyncio.run_coroutine_threadsafe(reply(request), loop)

    return handler


async def methods_ready(hub, client, *, answer=True):
    handler = echo_handler(client, asyncio.get_running_loop(), answer=answer)
    await set_handler(client, "on_method_request_received", handler)
    await eventually(lambda: hub.endpoint.connection("d1").subscribed(METHODS_FILTER))


async def test_method_round_trip_through_the_rest_seam(hub):
    hub.add_sas_device("d1")
    async with connected(device_client(hub)) as client:
        await methods_ready(hub, client)
        request = {"methodName": "reboot", "payload": {"delay": 1}, "responseTimeoutInSeconds": 5}
        status, payload = await asyncio.wait_for(
            hub.endpoint.invoke_method("d1", None, request), STEP
        )
    assert status == 200
    assert payload == {"method": "reboot", "echo": {"delay": 1}}
    assert not hub.endpoint.hub.pending_methods


async def test_method_times_out_with_504(hub):
    hub.add_sas_device("d1")
    async with connected(device_client(hub)) as client:
        await methods_ready(hub, client, answer=False)
        request = {"methodName": "hang", "payload": None, "responseTimeoutInSeconds": 1}
        with pytest.raises(IoTHubError) as failure:
            await asyncio.wait_for(hub.endpoint.invoke_method("d1", None, request), STEP)
    assert (failure.value.status, failure.value.code) == (504, "GatewayTimeoutException")


async def test_method_to_an_offline_or_unsubscribed_device_is_404(hub):
    hub.add_sas_device("d1")
    request = {"methodName": "reboot", "payload": None}
    with pytest.raises(IoTHubError) as offline:
        await hub.endpoint.invoke_method("d1", None, request)
    assert (offline.value.status, offline.value.code) == (404, "DeviceNotOnline")
    async with connected(device_client(hub)):
        with pytest.raises(IoTHubError) as unsubscribed:
            await hub.endpoint.invoke_method("d1", None, request)
    assert unsubscribed.value.code == "DeviceNotOnline"


@asynccontextmanager
async def served(api, *, own_thread):
    """Serve the REST API on this loop, or on a loop of its own in another thread."""
    if not own_thread:
        async with api:
            yield
        return
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(api.__aenter__(), loop))
        try:
            yield
        finally:
            exit_call = api.__aexit__(None, None, None)
            await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(exit_call, loop))
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(STEP)
        loop.close()


@pytest.mark.parametrize("own_thread", [False, True], ids=["same-loop", "rest-on-own-thread"])
async def test_registry_manager_invokes_a_method_over_rest(hub, tmp_path, own_thread):
    hub.add_sas_device("d1")
    ca_path, _ = hub.ca.write(tmp_path)
    cert_path, key_path = hub.ca.issue_server("127.0.0.1").write(tmp_path, "rest")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_path, key_path)
    api = ServiceApi(context, registry=hub.registry, method_invoker=hub.endpoint.invoke_method)
    async with served(api, own_thread=own_thread), connected(device_client(hub)) as client:
        await methods_ready(hub, client)
        manager = IoTHubRegistryManager.from_connection_string(api.connection_string())
        manager.protocol.config.connection.verify = str(ca_path)
        method = CloudToDeviceMethod(
            method_name="getConfig", payload={"k": "v"}, response_timeout_in_seconds=5
        )
        # The service SDK is synchronous and the endpoint shares this loop: call it off-loop.
        started = time.monotonic()
        result = await asyncio.wait_for(
            asyncio.to_thread(manager.invoke_device_method, "d1", method), STEP
        )
        # A reply handed across loops unsafely would only be noticed seconds later.
        assert time.monotonic() - started < 2.5
    assert result.status == 200
    assert result.payload == {"method": "getConfig", "echo": {"k": "v"}}
