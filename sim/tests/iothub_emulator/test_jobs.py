"""Import/export jobs through Microsoft's unmodified `IoTHubJobManager`, blobs in Azurite.

One assembled emulator (with Azurite) per module on a background loop thread, so jobs run on
the server's loop while the synchronous SDKs call it from the test thread.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from azure.iot.hub import IoTHubJobManager, IoTHubRegistryManager
from azure.iot.hub.models import JobProperties, QuerySpecification
from azure.storage.blob import BlobServiceClient, ContainerSasPermissions, generate_container_sas
from msrest.exceptions import HttpOperationError

from bridge_sim.azurite import ACCOUNT_KEY, ACCOUNT_NAME
from bridge_sim.iothub.emulator import IotHubEmulator
from bridge_sim.iothub.jobs import ImportExportJobs
from bridge_sim.iothub.quotas import Operation, Rate

WRONG_KEY = "V3JvbmdLZXlXcm9uZ0tleVdyb25nS2V5V3JvbmdLZXk="


@pytest.fixture(scope="module")
def running_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IotHubEmulator]:
    emulator = IotHubEmulator(workdir=tmp_path_factory.mktemp("jobs-hub"))
    loop = asyncio.new_event_loop()
    started, stop = threading.Event(), asyncio.Event()

    async def serve() -> None:
        async with emulator:
            started.set()
            await stop.wait()

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    assert started.wait(30), "the emulator did not start"
    yield emulator
    loop.call_soon_threadsafe(stop.set)
    thread.join(15)
    loop.close()


@pytest.fixture
def hub(running_hub: IotHubEmulator) -> IotHubEmulator:
    running_hub.registry.reset()
    running_hub.quotas.reconfigure(None)
    assert running_hub.service is not None
    running_hub.service.context.jobs = ImportExportJobs()
    return running_hub


@pytest.fixture
def env(hub: IotHubEmulator) -> dict[str, str]:
    return hub.env()


@pytest.fixture
def jobs(env: dict[str, str]) -> IoTHubJobManager:
    manager = IoTHubJobManager.from_connection_string(env["IOTHUB_CONNECTION_STRING"])
    manager.protocol.config.connection.verify = env["IOTHUB_ROOT_CA"]
    return manager


@pytest.fixture
def rm(env: dict[str, str]) -> IoTHubRegistryManager:
    manager = IoTHubRegistryManager.from_connection_string(env["IOTHUB_CONNECTION_STRING"])
    manager.protocol.config.connection.verify = env["IOTHUB_ROOT_CA"]
    return manager


@pytest.fixture
def blobs(env: dict[str, str]) -> Iterator[BlobServiceClient]:
    with BlobServiceClient.from_connection_string(env["AZURE_STORAGE_CONNECTION_STRING"]) as client:
        yield client


def sas_uri(hub: IotHubEmulator, container: str, key: str = ACCOUNT_KEY) -> str:
    """A container SAS URI as a caller hands it to IoT Hub."""
    assert hub.azurite is not None
    token = generate_container_sas(
        ACCOUNT_NAME,
        container,
        account_key=key,
        permission=ContainerSasPermissions(read=True, write=True, delete=True, list=True),
        expiry=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1),
    )
    return f"{hub.azurite.blob_endpoint}/{container}?{token}"


def new_container(blobs: BlobServiceClient, lines: list[str] | None = None) -> str:
    name = f"c-{uuid.uuid4().hex[:12]}"
    container = blobs.create_container(name)
    if lines is not None:
        container.upload_blob("devices.txt", "\n".join(lines).encode())
    return name


def read_blob(blobs: BlobServiceClient, container: str, name: str) -> list[Any]:
    text = blobs.get_blob_client(container, name).download_blob().readall().decode()
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def import_job(hub: IotHubEmulator, source: str, target: str | None = None) -> JobProperties:
    return JobProperties(
        type="import",
        input_blob_container_uri=sas_uri(hub, source),
        output_blob_container_uri=sas_uri(hub, target or source),
        storage_authentication_type="keyBased",
    )


def export_job(hub: IotHubEmulator, target: str, *, exclude_keys: bool) -> JobProperties:
    return JobProperties(
        type="export",
        output_blob_container_uri=sas_uri(hub, target),
        exclude_keys_in_export=exclude_keys,
        storage_authentication_type="keyBased",
    )


def finished(jobs: IoTHubJobManager, job_id: str, timeout: float = 20) -> JobProperties:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = jobs.get_import_export_job(job_id)
        if job.status not in {"enqueued", "running"}:
            return job
        time.sleep(0.1)
    pytest.fail(f"job {job_id} still {job.status} after {timeout} s")


def error_code(error: HttpOperationError) -> tuple[int, str]:
    return error.response.status_code, error.response.headers.get("iothub-errorcode", "")


def device_line(number: int, **extra: Any) -> str:
    entry = {
        "id": f"dev-{number:04d}",
        "importMode": "createOrUpdate",
        "status": "enabled",
        "authentication": {"type": "sas"},
        "tags": {"fleet": f"f{number % 3}"},
        "properties": {"desired": {"interval": number}},
    }
    return json.dumps(entry | extra)


def test_import_of_1000_devices_with_twins(hub, jobs, rm, blobs):
    key = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0NTY3ODk="
    lines = [device_line(n) for n in range(1000)]
    lines[7] = device_line(7, authentication={"type": "sas", "symmetricKey": {"primaryKey": key}})
    lines.append(json.dumps({"id": "dev-0001", "moduleId": "edge", "importMode": "create"}))
    container = new_container(blobs, lines)

    created = jobs.create_import_export_job(import_job(hub, container))
    assert created.type == "import"
    assert created.status in {"enqueued", "running"}
    job = finished(jobs, created.job_id)

    assert (job.status, job.progress, job.failure_reason) == ("completed", 100, None)
    assert job.start_time_utc <= job.end_time_utc
    assert read_blob(blobs, container, "importErrors.log") == []
    assert rm.get_device_registry_statistics().total_device_count == 1000
    twin = rm.get_twin("dev-0999")
    assert twin.tags == {"fleet": "f0"}
    assert twin.properties.desired["interval"] == 999
    assert rm.get_device("dev-0007").authentication.symmetric_key.primary_key == key
    assert rm.get_module("dev-0001", "edge").module_id == "edge"
    count = "SELECT COUNT() AS total FROM devices WHERE tags.fleet = 'f1'"
    result = rm.query_iot_hub(QuerySpecification(query=count))
    assert result.items[0].additional_properties == {"total": 333}


def test_import_logs_bad_lines_and_imports_the_good_ones(hub, jobs, rm, blobs):
    rm.create_device_with_sas("existing", "", "", "enabled")
    before = rm.get_twin("existing")
    lines = [
        device_line(1),
        '{"id": "broken", "importMode": ',
        json.dumps({"id": "odd", "importMode": "upsert"}),
        json.dumps(
            {
                "id": "existing",
                "importMode": "updateTwinIfMatchETag",
                "twinETag": "not-the-etag",
                "tags": {"changed": True},
            }
        ),
        json.dumps({"id": "existing", "importMode": "create"}),
        device_line(2),
    ]
    source, target = new_container(blobs, lines), new_container(blobs)

    job = finished(jobs, jobs.create_import_export_job(import_job(hub, source, target)).job_id)

    assert job.status == "completed"
    errors = read_blob(blobs, target, "importErrors.log")
    assert [(e["errorCode"], e.get("deviceId")) for e in errors] == [
        (400012, None),
        (400004, "odd"),
        (412001, "existing"),
        (409001, "existing"),
    ]
    assert "Invalid device format in line" in errors[0]["errorStatus"]
    assert "upsert" in errors[1]["errorStatus"]
    assert rm.get_twin("existing").tags == before.tags
    assert {d.device_id for d in rm.get_devices()} == {"existing", "dev-0001", "dev-0002"}


def test_export_writes_every_identity_and_round_trips(hub, jobs, rm, blobs):
    for number in range(25):
        rm.create_device_with_sas(f"exp-{number}", "", "", "enabled")
    rm.create_module_with_sas("exp-3", "sensor", "", "", "")
    rm.update_twin("exp-4", {"tags": {"site": "north"}, "properties": {"desired": {"on": 1}}})
    keys = rm.get_device("exp-9").authentication.symmetric_key.primary_key
    redacted, full = new_container(blobs), new_container(blobs)

    job = jobs.create_import_export_job(export_job(hub, redacted, exclude_keys=True))
    assert finished(jobs, job.job_id).status == "completed"
    job = jobs.create_import_export_job(export_job(hub, full, exclude_keys=False))
    assert finished(jobs, job.job_id).status == "completed"

    exported = read_blob(blobs, redacted, "devices.txt")
    assert len(exported) == 26
    assert {(e["id"], e.get("moduleId")) for e in exported} == {
        *((f"exp-{n}", None) for n in range(25)),
        ("exp-3", "sensor"),
    }
    assert all(e["authentication"]["symmetricKey"]["primaryKey"] is None for e in exported)
    by_id = {e["id"]: e for e in exported if "moduleId" not in e}
    assert by_id["exp-4"]["tags"] == {"site": "north"}
    assert by_id["exp-4"]["properties"]["desired"]["on"] == 1
    with_keys = {e["id"]: e for e in read_blob(blobs, full, "devices.txt")}
    assert with_keys["exp-9"]["authentication"]["symmetricKey"]["primaryKey"] == keys

    hub.registry.reset()
    job = jobs.create_import_export_job(import_job(hub, full))
    assert finished(jobs, job.job_id).status == "completed"
    assert rm.get_device("exp-9").authentication.symmetric_key.primary_key == keys
    assert rm.get_twin("exp-4").tags == {"site": "north"}
    assert rm.get_module("exp-3", "sensor").module_id == "sensor"


def test_only_one_job_may_be_active_and_cancel_frees_the_slot(hub, jobs, rm, blobs):
    assert hub.service is not None
    hub.service.context.jobs.queue_delay = 30
    container = new_container(blobs, [device_line(1)])
    first = jobs.create_import_export_job(import_job(hub, container))

    with pytest.raises(HttpOperationError) as refused:
        jobs.create_import_export_job(export_job(hub, container, exclude_keys=True))
    assert error_code(refused.value) == (429, "ThrottlingMaxActiveJobCountExceeded")
    assert [(j.job_id, j.status) for j in jobs.get_import_export_jobs()] == [
        (first.job_id, "enqueued")
    ]

    jobs.cancel_import_export_job(first.job_id)
    cancelled = jobs.get_import_export_job(first.job_id)
    assert cancelled.status == "cancelled"
    assert cancelled.end_time_utc is not None
    hub.service.context.jobs.queue_delay = 0
    second = jobs.create_import_export_job(import_job(hub, container))
    assert finished(jobs, second.job_id).status == "completed"
    assert jobs.get_import_export_job(first.job_id).status == "cancelled"
    assert [d.device_id for d in rm.get_devices()] == ["dev-0001"]


def _wrong_key(hub, blobs):
    return sas_uri(hub, new_container(blobs, [device_line(1)]), key=WRONG_KEY)


def _missing_container(hub, _blobs):
    return sas_uri(hub, "never-created")


def _no_devices_blob(hub, blobs):
    return sas_uri(hub, new_container(blobs))


def _no_signature(hub, blobs):
    return sas_uri(hub, new_container(blobs, [device_line(1)])).split("?")[0] + "?sv=2021-08-06"


@pytest.mark.parametrize(
    ("input_uri", "reason"),
    [
        (_wrong_key, "403"),
        (_missing_container, "ContainerNotFound"),
        (_no_devices_blob, "BlobNotFound"),
        (_no_signature, "no SAS signature"),
    ],
)
def test_unusable_storage_fails_the_job_with_a_reason(hub, jobs, blobs, input_uri, reason):
    properties = import_job(hub, new_container(blobs))
    properties.input_blob_container_uri = input_uri(hub, blobs)

    job = finished(jobs, jobs.create_import_export_job(properties).job_id)

    assert job.status == "failed"
    assert reason in job.failure_reason
    assert hub.registry.devices() == []


def test_output_container_must_exist_and_be_writable(hub, jobs, rm, blobs):
    properties = import_job(hub, new_container(blobs, [device_line(1)]))
    properties.output_blob_container_uri = sas_uri(hub, "no-such-output")

    job = finished(jobs, jobs.create_import_export_job(properties).job_id)

    assert job.status == "failed"
    assert "importErrors.log" in job.failure_reason
    assert rm.get_devices() == []
    export = export_job(hub, "no-such-output", exclude_keys=True)
    job = finished(jobs, jobs.create_import_export_job(export).job_id)
    assert (job.status, job.progress) == ("failed", 0)
    assert "404 ContainerNotFound" in job.failure_reason


def test_requests_that_cannot_become_jobs(hub, jobs):
    with pytest.raises(HttpOperationError) as unknown:
        jobs.get_import_export_job("no-such-job")
    assert error_code(unknown.value) == (404, "JobNotFound")
    backup = JobProperties(type="backup", output_blob_container_uri=sas_uri(hub, "x"))
    with pytest.raises(HttpOperationError) as wrong_type:
        jobs.create_import_export_job(backup)
    assert error_code(wrong_type.value) == (400, "ArgumentInvalid")
    no_input = JobProperties(type="import", output_blob_container_uri=sas_uri(hub, "x"))
    with pytest.raises(HttpOperationError) as missing:
        jobs.create_import_export_job(no_input)
    assert error_code(missing.value) == (400, "ArgumentInvalid")
    assert jobs.get_import_export_jobs() == []


def test_job_operations_spend_the_jobs_quota(hub, jobs):
    hub.quotas.reconfigure("S1", overrides={Operation.JOBS: Rate(2, 60)})
    jobs.get_import_export_jobs()
    jobs.get_import_export_jobs()
    with pytest.raises(HttpOperationError) as throttled:
        jobs.get_import_export_jobs()
    assert error_code(throttled.value) == (429, "ThrottlingException")


def test_jobs_need_registry_rights(hub, env):
    read_only = env["IOTHUB_CONNECTION_STRING"]
    policy = hub.registry.policies["registryRead"]
    read_only = read_only.split(";")[0] + f";SharedAccessKeyName={policy.name}"
    read_only += f";SharedAccessKey={policy.primary_key}"
    manager = IoTHubJobManager.from_connection_string(read_only)
    manager.protocol.config.connection.verify = env["IOTHUB_ROOT_CA"]
    assert manager.get_import_export_jobs() == []
    with pytest.raises(HttpOperationError) as denied:
        manager.create_import_export_job(export_job(hub, "x", exclude_keys=True))
    assert error_code(denied.value) == (401, "IotHubUnauthorizedAccess")
