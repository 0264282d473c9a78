"""Scheduled device jobs through azure-iot-hub's `IoTHubJobManager` (`/jobs/v2`).

The calls are those of the SDK's iothub_job_manager_sample: create_scheduled_job for a
twin update and for a direct method, get_scheduled_job until it completes,
query_scheduled_jobs, cancel_scheduled_job. Before the emulator served `/jobs/v2`, each
failed with 404.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid

import pytest
from azure.iot.device import MethodResponse
from azure.iot.device.aio import IoTHubDeviceClient
from azure.iot.hub import IoTHubJobManager, IoTHubRegistryManager
from azure.iot.hub.models import CloudToDeviceMethod, JobRequest, Twin, TwinProperties
from msrest.exceptions import HttpOperationError

from bridge_sim.iothub.emulator import IotHubEmulator
from iothub_emulator.test_device_harness import STEP, release_paho_sockets, set_handler


def _manager(kind, connection_string, ca_path):
    manager = kind.from_connection_string(connection_string)
    manager.protocol.config.connection.verify = str(ca_path)
    return manager


@pytest.fixture
def jm(service_hub):
    assert service_hub.raw("POST", "/_emulator/reset", api_version=None).status_code == 204
    return _manager(
        IoTHubJobManager, service_hub.api.connection_string("iothubowner"), service_hub.ca_path
    )


def _wait_for(jm, job_id, status):
    deadline = time.monotonic() + STEP
    while (job := jm.get_scheduled_job(job_id)).status != status:
        assert job.status not in {"failed", "cancelled"} or status in {"failed", "cancelled"}
        assert time.monotonic() < deadline, f"job still {job.status}"
        time.sleep(0.02)
    return job


def test_twin_update_job_writes_every_selected_twin(rm, jm):
    for device_id, site in (("j1", "a"), ("j2", "a"), ("j3", "b")):
        rm.create_device_with_sas(device_id, None, None, "enabled")
        rm.update_twin(device_id, Twin(tags={"site": site}), "*")
    job_id = str(uuid.uuid4())
    request = JobRequest(
        job_id=job_id,
        type="scheduleUpdateTwin",
        start_time=dt.datetime.now(dt.UTC),
        update_twin=Twin(etag="*", tags={"fw": "2"}, properties=TwinProperties(desired={"x": 1})),
        query_condition="tags.site = 'a'",
        max_execution_time_in_seconds=60,
    )
    created = jm.create_scheduled_job(job_id, request)
    assert (created.job_id, created.type) == (job_id, "scheduleUpdateTwin")
    assert created.status in {"queued", "running", "completed"}
    done = _wait_for(jm, job_id, "completed")
    assert done.device_job_statistics.device_count == 2
    assert done.device_job_statistics.succeeded_count == 2
    assert done.end_time is not None
    twins = {d: rm.get_twin(d) for d in ("j1", "j2", "j3")}
    assert {d: t.tags.get("fw") for d, t in twins.items()} == {"j1": "2", "j2": "2", "j3": None}
    assert twins["j1"].properties.desired["x"] == 1
    listed = jm.query_scheduled_jobs("scheduleUpdateTwin", "completed")
    assert [item["jobId"] for item in listed.items] == [job_id]


def test_a_future_job_waits_and_can_be_cancelled(jm):
    job_id = str(uuid.uuid4())
    request = JobRequest(
        job_id=job_id,
        type="scheduleDeviceMethod",
        start_time=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1),
        cloud_to_device_method=CloudToDeviceMethod(method_name="reboot", payload={}),
        query_condition="deviceId IN ['nobody']",
        max_execution_time_in_seconds=60,
    )
    assert jm.create_scheduled_job(job_id, request).status in {"queued", "scheduled"}
    assert jm.cancel_scheduled_job(job_id).status == "cancelled"
    assert jm.get_scheduled_job(job_id).status == "cancelled"
    with pytest.raises(HttpOperationError) as missing:
        jm.get_scheduled_job("no-such-job")
    assert missing.value.response.status_code == 404
    assert missing.value.response.headers["iothub-errorcode"] == "JobNotFound"


async def test_method_job_calls_connected_devices_and_counts_offline_ones_failed(tmp_path):
    async with IotHubEmulator(workdir=tmp_path / "hub", azurite=False) as hub:
        env = hub.env()
        rm = _manager(IoTHubRegistryManager, env["IOTHUB_CONNECTION_STRING"], hub.ca_path)
        jm = _manager(IoTHubJobManager, env["IOTHUB_CONNECTION_STRING"], hub.ca_path)
        online = await asyncio.to_thread(rm.create_device_with_sas, "on", None, None, "enabled")
        await asyncio.to_thread(rm.create_device_with_sas, "off", None, None, "enabled")
        client = IoTHubDeviceClient.create_from_connection_string(
            f"HostName={hub.hostname};DeviceId=on;GatewayHostName={hub.gateway_host};"
            f"SharedAccessKey={online.authentication.symmetric_key.primary_key}",
            server_verification_cert=hub.ca_path.read_text(),
            connection_retry=False,
        )
        calls = []

        async def on_method(request):
            calls.append((request.name, request.payload))
            await client.send_method_response(
                MethodResponse.create_from_method_request(request, 200, {"ok": True})
            )

        try:
            await asyncio.wait_for(client.connect(), STEP)
            await set_handler(client, "on_method_request_received", on_method)
            job_id = str(uuid.uuid4())
            request = JobRequest(
                job_id=job_id,
                type="scheduleDeviceMethod",
                start_time=dt.datetime.now(dt.UTC),
                cloud_to_device_method=CloudToDeviceMethod(
                    method_name="reboot", payload={"delay": 1}, response_timeout_in_seconds=5
                ),
                query_condition="deviceId IN ['on', 'off']",
                max_execution_time_in_seconds=60,
            )
            await asyncio.to_thread(jm.create_scheduled_job, job_id, request)
            done = await asyncio.to_thread(_wait_for, jm, job_id, "completed")
        finally:
            await asyncio.wait_for(client.shutdown(), STEP)
            release_paho_sockets(client)
    assert calls == [("reboot", {"delay": 1})]
    stats = done.device_job_statistics
    assert (stats.device_count, stats.succeeded_count, stats.failed_count) == (2, 1, 1)
