"""Fixtures for the firmware tests: the corpus, an emulated hub, and running patched programs.

The hub runs on its own loop thread for the whole session; patched programs run as real
subprocesses that dial it by its DNS name (resolved by `shims/sitecustomize.py`) and
trust its CA through SSL_CERT_FILE, so nothing in a program is changed for the test.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from azure.iot.hub import IoTHubRegistryManager
from azure.iot.hub.models import Twin, TwinProperties

from bridge.firmware import DeviceIdSource, PatchOptions, patch
from bridge_sim.iothub.emulator import IotHubEmulator
from bridge_sim.pki import self_signed, thumbprints

HERE = Path(__file__).parent
CORPUS = HERE / "corpus"
SHIMS = HERE / "shims"
MICROPYTHON_LIB = HERE / "micropython_lib"
NODE_SDKS = HERE.parent.parent / "tools" / "node-sdks" / "node_modules"
RUN_TIMEOUT = 60
LOOPS: dict[int, asyncio.AbstractEventLoop] = {}


@pytest.fixture(scope="session")
def running_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IotHubEmulator]:
    emulator = IotHubEmulator(workdir=tmp_path_factory.mktemp("firmware-hub"), azurite=False)
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
    LOOPS[id(emulator)] = loop
    yield emulator
    loop.call_soon_threadsafe(stop.set)
    thread.join(15)
    loop.close()


@pytest.fixture
def hub(running_hub: IotHubEmulator) -> IotHubEmulator:
    running_hub.registry.reset()
    return running_hub


@pytest.fixture
def rm(hub: IotHubEmulator) -> IoTHubRegistryManager:
    """Microsoft's registry manager: the independent witness of what devices wrote."""
    env = hub.env()
    manager = IoTHubRegistryManager.from_connection_string(env["IOTHUB_CONNECTION_STRING"])
    manager.protocol.config.connection.verify = env["IOTHUB_ROOT_CA"]
    return manager


def copy_corpus(name: str, destination: Path) -> Path:
    target = destination / Path(name).name
    shutil.copytree(CORPUS / name, target)
    return target


def patch_repo(repo: Path, hub_host: str, device_id_from: str = "client-id"):
    options = PatchOptions(hub=hub_host, device_id=DeviceIdSource.parse(device_id_from))
    return patch(repo, options, apply=True)


@dataclass
class Device:
    device_id: str
    cert_file: Path
    key_file: Path


def provision(rm: IoTHubRegistryManager, repo: Path, device_id: str, cert: str, key: str) -> Device:
    """The device's existing certificate in the repo, its thumbprint registered in the hub."""
    issued = self_signed(device_id)
    cert_file, key_file = repo / cert, repo / key
    cert_file.parent.mkdir(parents=True, exist_ok=True)
    cert_file.write_text(issued.cert_pem)
    key_file.write_text(issued.key_pem)
    sha1, sha256 = thumbprints(issued.cert_pem)
    rm.create_device_with_x509(device_id, sha1, sha256, "enabled")
    return Device(device_id, cert_file, key_file)


def program_env(
    hub: IotHubEmulator,
    repo: Path,
    *,
    micropython: bool = False,
    extra_env: dict[str, str] | None = None,
) -> dict[str, str]:
    paths = [str(SHIMS)] + ([str(MICROPYTHON_LIB)] if micropython else []) + [str(repo)]
    return {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": os.pathsep.join(paths),
        "SSL_CERT_FILE": str(hub.ca_path),
        "FIRMWARE_TEST_HOSTS": f"{hub.hostname}={hub.gateway_host}",
        **(extra_env or {}),
    }


def start_program(
    hub: IotHubEmulator, repo: Path, script: str, *args: str, **kwargs
) -> subprocess.Popen[str]:
    """A long-running program (it listens for desired properties) in the background."""
    return subprocess.Popen(
        [sys.executable, "-X", "faulthandler", script, *args],
        cwd=repo,
        env=program_env(hub, repo, **kwargs),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def start_node_program(
    hub: IotHubEmulator, repo: Path, script: str, extra_env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    """A Node program with Microsoft's SDK from tools/node-sdks (`make node-sdks`)."""
    node = shutil.which("node")
    if node is None or not (NODE_SDKS / "azure-iot-device-mqtt").is_dir():
        pytest.skip("Node.js or tools/node-sdks is missing: run `make node-sdks`")
    env = {
        "PATH": os.environ.get("PATH", ""),
        "NODE_PATH": str(NODE_SDKS),
        "NODE_EXTRA_CA_CERTS": str(hub.ca_path),
        "FIRMWARE_TEST_HOSTS": f"{hub.hostname}={hub.gateway_host}",
        **(extra_env or {}),
    }
    return subprocess.Popen(
        [node, "-r", str(SHIMS / "node" / "resolve-hub.js"), script],
        cwd=repo,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def run_program(
    hub: IotHubEmulator, repo: Path, script: str, **kwargs
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-X", "faulthandler", script],
        cwd=repo,
        env=program_env(hub, repo, **kwargs),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )


def telemetry(hub: IotHubEmulator, device_id: str):
    stored = hub.events.read(hub.events.partition_for(device_id), 0, 100_000)
    return [e for e in stored if e.device_id == device_id and e.message_source == "Telemetry"]


def wait_for(predicate, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def send_c2d(hub: IotHubEmulator, device_id: str, body: str, properties=None) -> None:
    """A cloud-to-device message, delivered by the emulator's device endpoint."""
    assert hub.devices is not None
    coroutine = hub.devices.send_c2d(device_id, body, properties)
    asyncio.run_coroutine_threadsafe(coroutine, LOOPS[id(hub)]).result(10)


def set_desired(rm: IoTHubRegistryManager, device_id: str, desired: dict) -> None:
    rm.update_twin(device_id, Twin(properties=TwinProperties(desired=desired)), "*")


def reported(rm: IoTHubRegistryManager, device_id: str) -> dict:
    twin = rm.get_twin(device_id)
    props = twin.properties.reported or {}
    return json.loads(json.dumps({k: v for k, v in props.items() if not k.startswith("$")}))
