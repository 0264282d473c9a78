"""One assembled IoT Hub emulator (with Azurite) for the whole session, on its own loop thread.

The client under test runs on pytest's loop; Microsoft's synchronous azure-iot-hub SDK, used
to cross-check what the client wrote, calls the emulator from the test thread. Every test
starts from an empty registry with throttling, faults and request counts cleared.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import requests
from azure.iot.hub import IoTHubRegistryManager
from azure.iot.hub.models import QuerySpecification
from azure.storage.blob import BlobServiceClient, ContainerSasPermissions, generate_container_sas

from bridge.azure import HubStats, IotHubService, RateBudget, RetryPolicy
from bridge_sim.azurite import ACCOUNT_KEY, ACCOUNT_NAME
from bridge_sim.iothub.emulator import IotHubEmulator
from bridge_sim.iothub.jobs import ImportExportJobs

# Retries in tests wait milliseconds, not seconds.
FAST_RETRY = RetryPolicy(attempts=8, base_delay=0.005, max_delay=0.05)


@pytest.fixture(scope="session")
def running_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IotHubEmulator]:
    emulator = IotHubEmulator(workdir=tmp_path_factory.mktemp("azure-client-hub"))
    loop = asyncio.new_event_loop()
    started, stop = threading.Event(), asyncio.Event()
    failure: list[BaseException] = []

    async def serve() -> None:
        try:
            async with emulator:
                started.set()
                await stop.wait()
        except BaseException as error:
            failure.append(error)
            started.set()
            raise

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    assert started.wait(60), "the emulator did not start"
    assert not failure, f"the emulator failed to start: {failure[0]!r}"
    yield emulator
    loop.call_soon_threadsafe(stop.set)
    thread.join(15)
    loop.close()


@pytest.fixture
def hub(running_hub: IotHubEmulator) -> IotHubEmulator:
    assert running_hub.service is not None
    running_hub.registry.reset()
    running_hub.quotas.reconfigure(None)
    running_hub.faults.clear()
    running_hub.service.stats.clear()
    running_hub.service.context.jobs = ImportExportJobs()
    return running_hub


@pytest.fixture
def env(hub: IotHubEmulator) -> dict[str, str]:
    return hub.env()


@pytest.fixture
def rm(env: dict[str, str]) -> IoTHubRegistryManager:
    """Microsoft's registry manager, trusting the emulator's CA: the independent witness."""
    manager = IoTHubRegistryManager.from_connection_string(env["IOTHUB_CONNECTION_STRING"])
    manager.protocol.config.connection.verify = env["IOTHUB_ROOT_CA"]
    return manager


@pytest.fixture
def stats() -> HubStats:
    return HubStats()


@pytest.fixture
async def service(env: dict[str, str], stats: HubStats) -> AsyncIterator[IotHubService]:
    async with IotHubService(
        env["IOTHUB_CONNECTION_STRING"],
        budget=RateBudget.unlimited(),
        retry=FAST_RETRY,
        stats=stats,
        ca_bundle=env["IOTHUB_ROOT_CA"],
    ) as client:
        yield client


def control(hub: IotHubEmulator, method: str, path: str, body: Any = None) -> Any:
    """Call the emulator's control API (`/_emulator/...`), as a rehearsal script would."""
    assert hub.service is not None
    response = requests.request(
        method,
        f"https://{hub.service.host_name}/_emulator/{path}",
        json=body,
        verify=str(hub.ca_path),
        timeout=10,
    )
    response.raise_for_status()
    return response.json() if response.content else None


def count(rm: IoTHubRegistryManager, where: str) -> int:
    """How many devices match `where`, as the SDK's query sees it."""
    text = f"SELECT COUNT() AS n FROM devices WHERE {where}"  # noqa: S608 - an IoT Hub query
    return rm.query_iot_hub(QuerySpecification(query=text)).items[0].additional_properties["n"]


def rest_statuses(hub: IotHubEmulator, status: int) -> int:
    """How many service API requests the emulator answered with `status`."""
    rows = control(hub, "GET", "stats")["requests"]
    return sum(
        row["count"] for row in rows if row["endpoint"] == "rest" and row["status"] == status
    )


@pytest.fixture
def blobs(env: dict[str, str]) -> Iterator[BlobServiceClient]:
    with BlobServiceClient.from_connection_string(env["AZURE_STORAGE_CONNECTION_STRING"]) as client:
        yield client


def container_uri(hub: IotHubEmulator, name: str) -> str:
    """The SAS URI of container `name` in Azurite (read, write, delete, list; one hour)."""
    assert hub.azurite is not None
    token = generate_container_sas(
        ACCOUNT_NAME,
        name,
        account_key=ACCOUNT_KEY,
        permission=ContainerSasPermissions(read=True, write=True, delete=True, list=True),
        expiry=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1),
    )
    return f"{hub.azurite.blob_endpoint}/{name}?{token}"


def new_container_uri(hub: IotHubEmulator, blobs: BlobServiceClient) -> str:
    """A fresh container in Azurite and its SAS URI, as an operator hands it to the bridge."""
    name = f"c-{uuid.uuid4().hex[:12]}"
    blobs.create_container(name)
    return container_uri(hub, name)
