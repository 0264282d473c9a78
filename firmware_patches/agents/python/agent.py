"""Reference migration agent for Python devices: AWS IoT Core (awsiotsdk) to Azure IoT Hub.

A standalone program, not a firmware recipe (this folder has no `__init__.py`, so recipe
discovery over `firmware_patches` skips it). What it does, in order:

1. Connects to AWS IoT with its certificate and listens on the jobs topics
   (`IotJobsClient`); asks for pending work at every connect.
2. Takes a `migrate-to-azure-iot-hub` job (`StartNextPendingJobExecution`), writes its AWS
   settings and the job into its state file first (the fallback survives a reboot).
3. Connects to Azure IoT Hub with the SAME certificate and key
   (`IoTHubDeviceClient.create_from_x509_certificate`; the hub knows its thumbprint) while
   still connected to AWS: make before break.
4. Reports `{"migration": {"status": "migrated", "jobId": ...}}` in its twin's reported
   properties, marks the AWS job execution SUCCEEDED, records `cloud: azure`, then lets go
   of AWS.
5. If Azure stays unreachable until `fallbackDeadlineSeconds`, it marks the execution
   FAILED with the reason and stays on AWS.

When the job carries new firmware (`firmware`: URL, size, SHA-256, such as `iot-bridge
firmware patch --package` produces), the agent installs it between 2 and 3: downloads it,
checks size and SHA-256 (a mismatch fails the job and keeps the running code on AWS),
unpacks it beside the old one, switches `firmware/current` in one rename and restarts into
it (`restart_into`); the twin's `migration.firmware` then names what runs.

Run it: `python agent.py --state /var/lib/agent/state.json --thing NAME --cert C --key K
--endpoint HOST[:PORT] --ca CA.pem`. On a restart it reads the state file and goes back to
the cloud it was on. `faults` exist for rehearsals (a simulated fleet's misbehaving devices).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import logging
import os
import queue
import tarfile
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from concurrent.futures import Future
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from awscrt import mqtt, mqtt5
from awsiot import iotjobs, mqtt5_client_builder
from azure.iot.device import X509, IoTHubDeviceClient, Message

__all__ = ["AgentSettings", "MigrationAgent", "main"]

OPERATION = "migrate-to-azure-iot-hub"
SUPPORTED_VERSIONS = frozenset({"1"})
THING_NAME = "$thingName"
QOS1 = mqtt.QoS.AT_LEAST_ONCE
TIMEOUT = 10.0
FAULTS = frozenset({"reject", "vanish", "azure-unreachable", "ignore-jobs", "claim-success"})

log = logging.getLogger("migration_agent")


@dataclass
class AgentSettings:
    """Where the device lives on AWS; kept in the state file as the fallback."""

    thing_name: str
    cert_file: str
    key_file: str
    endpoint: str  # host or host:port of the AWS IoT data endpoint
    ca_file: str | None = None
    faults: list[str] = field(default_factory=list)

    def host_port(self) -> tuple[str, int]:
        host, _, port = self.endpoint.partition(":")
        return host, int(port or 8883)


def install_firmware(artifact: dict[str, Any], folder: Path) -> dict[str, Any]:
    """Download the job's firmware, check its size and SHA-256, unpack it beside the old
    one and switch `folder/current` to it in one rename; return what was installed.

    Nothing of the new firmware is used before every check passed, and the switch is a
    rename of a symbolic link, so a power cut leaves either the old firmware or the new.
    """
    size, expected = int(artifact["size"]), str(artifact["sha256"])
    url = str(artifact["url"])
    if urllib.parse.urlsplit(url).scheme not in {"https", "http", "file"}:
        raise ValueError(f"unsupported firmware URL scheme in {url!r}")
    with urllib.request.urlopen(url, timeout=TIMEOUT * 6) as answer:  # noqa: S310 - checked above
        payload = answer.read(size + 1)
    if len(payload) != size:
        raise ValueError(f"firmware is {len(payload)} bytes, the job says {size}")
    digest = hashlib.sha256(payload).hexdigest()
    if digest != expected:
        raise ValueError(f"firmware SHA-256 is {digest}, the job says {expected}")
    target = folder / digest
    folder.mkdir(parents=True, exist_ok=True)
    if not target.exists():
        staging = Path(tempfile.mkdtemp(dir=folder))
        with tarfile.open(fileobj=io.BytesIO(payload), mode="r:gz") as archive:
            archive.extractall(staging, filter="data")  # no absolute paths, links or devices
        staging.replace(target)
    link = folder / f".current-{os.getpid()}"
    with contextlib.suppress(FileNotFoundError):
        link.unlink()
    link.symlink_to(target.name)
    link.replace(folder / "current")
    return {"sha256": digest, "size": size, "path": str(target)}


class StateFile:
    """The agent's durable state: its AWS fallback, the cloud it is on, the job at hand."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self) -> dict[str, Any]:
        try:
            return dict(json.loads(self.path.read_text()))
        except (OSError, ValueError):
            return {}

    def write(self, state: dict[str, Any]) -> None:
        # Write then rename: a reboot mid-write leaves the old state, never half of one.
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(
            "w", dir=self.path.parent, delete=False, suffix=".tmp"
        ) as out:
            json.dump(state, out, indent=1)
            out.flush()
            os.fsync(out.fileno())
        Path(out.name).replace(self.path)


class MigrationAgent:
    """Runs on the device: telemetry on its current cloud, and the migration job."""

    def __init__(self, settings: AgentSettings, state_file: Path) -> None:
        unknown = set(settings.faults) - FAULTS
        if unknown:
            raise ValueError(f"unknown faults {sorted(unknown)}")
        self.settings = settings
        self.state = StateFile(state_file)
        self.cloud = "aws"
        self.azure: Any = None  # IoTHubDeviceClient once on Azure
        self.aws: mqtt5.Client | None = None
        self.jobs: iotjobs.IotJobsClient | None = None
        self.outcome: dict[str, Any] | None = None  # the last job's result, for tests
        self._work: queue.Queue[Any] = queue.Queue()
        self._aws_up = threading.Event()
        self._stopped = threading.Event()
        self._worker: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Connect to the cloud the state file names (AWS the first time)."""
        state = self.state.read()
        state.setdefault("aws", asdict(self.settings))
        self.state.write(state)
        self._worker = threading.Thread(
            target=self._run, name=f"agent-{self.settings.thing_name}", daemon=True
        )
        self._worker.start()
        if state.get("cloud") == "azure" and state.get("azure"):
            self._connect_azure(state["azure"])  # a reboot after cutover
            self.cloud = "azure"
            return
        self._connect_aws()

    def stop(self) -> None:
        """Disconnect from whichever cloud the agent is on."""
        self._stopped.set()
        self._work.put(None)
        self._disconnect_aws()
        if self.azure is not None:
            with contextlib.suppress(Exception):
                self.azure.shutdown()
            self.azure = None
        if self._worker is not None:
            self._worker.join(TIMEOUT)

    def send_telemetry(self, payload: dict[str, Any]) -> str:
        """Publish one reading on the current cloud; return which cloud took it."""
        body = json.dumps(payload)
        topic = f"dt/{self.settings.thing_name}"
        if self.cloud == "azure" and self.azure is not None:
            message = Message(body, content_encoding="utf-8", content_type="application/json")
            # The AWS topic goes along as properties, as the relay stamps it, so the routes
            # translated from AWS rules match this device's messages after cutover too.
            message.custom_properties = {"awsTopic": topic} | {
                f"awsTopic{level}": name for level, name in enumerate(topic.split("/"), 1)
            }
            self.azure.send_message(message)
            return "azure"
        if self.aws is None or not self._aws_up.is_set():
            raise ConnectionError("not connected to AWS")
        publish = mqtt5.PublishPacket(
            topic=topic, payload=body.encode(), qos=mqtt5.QoS.AT_LEAST_ONCE
        )
        self.aws.publish(publish).result(TIMEOUT)
        return "aws"

    # -- AWS side --------------------------------------------------------------------------

    def _connect_aws(self) -> None:
        settings = self.settings
        host, port = settings.host_port()
        connected: Future[None] = Future()

        def on_success(_data: Any) -> None:
            self._aws_up.set()
            self._work.put("connected")
            if not connected.done():
                connected.set_result(None)

        def on_interrupted(_data: Any) -> None:
            self._aws_up.clear()

        client = mqtt5_client_builder.mtls_from_path(
            cert_filepath=settings.cert_file,
            pri_key_filepath=settings.key_file,
            endpoint=host,
            port=port,
            ca_filepath=settings.ca_file,
            client_id=settings.thing_name,
            on_lifecycle_connection_success=on_success,
            on_lifecycle_disconnection=on_interrupted,
            min_reconnect_delay_ms=200,
            max_reconnect_delay_ms=2000,
        )
        self.aws = client
        client.start()
        connected.result(TIMEOUT)
        if "ignore-jobs" in settings.faults:
            return
        self._subscribe_jobs(client)
        self._request_next()

    def _subscribe_jobs(self, client: mqtt5.Client) -> None:
        thing = self.settings.thing_name
        jobs = self.jobs = iotjobs.IotJobsClient(client)
        subscriptions = (
            jobs.subscribe_to_next_job_execution_changed_events(
                iotjobs.NextJobExecutionChangedSubscriptionRequest(thing_name=thing),
                QOS1,
                lambda event: self._work.put(event.execution) if event.execution else None,
            ),
            jobs.subscribe_to_start_next_pending_job_execution_accepted(
                iotjobs.StartNextPendingJobExecutionSubscriptionRequest(thing_name=thing),
                QOS1,
                lambda response: self._work.put(response.execution) if response.execution else None,
            ),
            jobs.subscribe_to_update_job_execution_accepted(
                iotjobs.UpdateJobExecutionSubscriptionRequest(thing_name=thing, job_id="+"),
                QOS1,
                lambda _response: None,
            ),
        )
        for future, _topic in subscriptions:
            future.result(TIMEOUT)

    def _request_next(self) -> None:
        if self.jobs is None:
            return
        request = iotjobs.StartNextPendingJobExecutionRequest(
            thing_name=self.settings.thing_name, step_timeout_in_minutes=None
        )
        self.jobs.publish_start_next_pending_job_execution(request, QOS1).result(TIMEOUT)

    def _update_job(self, job_id: str, status: str, details: dict[str, str]) -> None:
        assert self.jobs is not None
        request = iotjobs.UpdateJobExecutionRequest(
            thing_name=self.settings.thing_name,
            job_id=job_id,
            status=status,
            status_details=details,
        )
        self.jobs.publish_update_job_execution(request, QOS1).result(TIMEOUT)

    def _disconnect_aws(self) -> None:
        client, self.aws = self.aws, None
        self._aws_up.clear()
        if client is not None:
            with contextlib.suppress(Exception):
                client.stop(mqtt5.DisconnectPacket())

    # -- the job ---------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stopped.is_set():
            item = self._work.get()
            if item is None:
                return
            if item == "connected":
                with contextlib.suppress(Exception):
                    self._request_next()
                continue
            if getattr(item, "status", None) not in {"QUEUED", "IN_PROGRESS", None}:
                continue
            if item.status == "QUEUED":  # a notification: take it (start-next answers)
                with contextlib.suppress(Exception):
                    self._request_next()
                continue
            try:
                self._handle(item.job_id, item.job_document or {})
            except Exception:
                log.exception("agent.job_failed")

    def _handle(self, job_id: str, document: dict[str, Any]) -> None:
        if self.cloud == "azure":
            return
        if (
            document.get("operation") != OPERATION
            or document.get("version") not in SUPPORTED_VERSIONS
        ):
            self._update_job(job_id, "REJECTED", {"reason": "unsupported job document"})
            return
        if self._misbehave(job_id):
            return
        state = self.state.read()
        state["job"] = {"jobId": job_id, "document": document, "taken_at": time.time()}
        self.state.write(state)  # the fallback (AWS settings) is already in the state file
        if document.get("firmware"):
            try:
                state["firmware"] = install_firmware(
                    document["firmware"], self.state.path.parent / "firmware"
                )
            except (OSError, ValueError) as exc:
                reason = f"firmware not installed: {exc}"[:1000]
                self.outcome = {"jobId": job_id, "status": "FAILED", "reason": reason}
                self._update_job(job_id, "FAILED", {"reason": reason})
                return  # the running code stays, on AWS
            self.state.write(state)
            self.restart_into(Path(state["firmware"]["path"]))
        azure = self._azure_settings(document)
        deadline = time.monotonic() + float(document.get("fallbackDeadlineSeconds", 60))
        error = "no attempt"
        while time.monotonic() < deadline and not self._stopped.is_set():
            try:
                self._connect_azure(azure)
                break
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
                time.sleep(1.0)
        else:
            if self._stopped.is_set():
                return  # powering off mid-migration: the job is taken up again after a restart
            self.outcome = {"jobId": job_id, "status": "FAILED", "reason": error}
            self._update_job(job_id, "FAILED", {"reason": f"azure unreachable: {error}"[:1000]})
            state["cloud"] = "aws"
            self.state.write(state)
            return
        migration = {
            "status": "migrated",
            "jobId": job_id,
            "from": "aws-iot-core",
            "at": datetime.now(UTC).isoformat(),
        }
        if state.get("firmware"):
            migration["firmware"] = state["firmware"]["sha256"]
        self.azure.patch_twin_reported_properties({"migration": migration})
        self.cloud = "azure"  # telemetry goes to Azure from here: no gap
        state.update(cloud="azure", azure=azure)
        self.state.write(state)
        self._update_job(job_id, "SUCCEEDED", {"azure": "connected"})
        self.outcome = {"jobId": job_id, "status": "SUCCEEDED"}
        self._disconnect_aws()  # break only after make

    def restart_into(self, program: Path) -> None:
        """Run the new firmware. The reference agent only records it (it is the program in
        this rehearsal); a device's agent replaces itself here, e.g. with `os.execv` into
        `program`'s entry point, and the new program reads the same state file and carries
        the job on from "connect to Azure"."""
        log.info("agent.firmware_installed: %s", program)

    def _misbehave(self, job_id: str) -> bool:
        """Act out a simulated fault instead of migrating; False when there is none."""
        faults = self.settings.faults
        if "reject" in faults:
            self.outcome = {"jobId": job_id, "status": "REJECTED"}
            self._update_job(job_id, "REJECTED", {"reason": "device refused the migration"})
        elif "claim-success" in faults:  # says SUCCEEDED, never moves
            self.outcome = {"jobId": job_id, "status": "SUCCEEDED"}
            self._update_job(job_id, "SUCCEEDED", {"azure": "connected"})
        elif "vanish" in faults:
            self.outcome = {"jobId": job_id, "status": "vanished"}
            self._disconnect_aws()  # takes the job, then is never heard of again
        else:
            return False
        return True

    def _azure_settings(self, document: dict[str, Any]) -> dict[str, Any]:
        hub = document["hub"]
        device_id = document.get("deviceId", THING_NAME)
        pems = [a for a in document.get("trustAnchors", []) if "-----BEGIN" in a]
        return {
            "hostName": hub["hostName"],
            "gatewayHostName": hub.get("gatewayHostName"),
            "deviceId": self.settings.thing_name if device_id == THING_NAME else device_id,
            # Named roots (DigiCert Global Root G2, Microsoft RSA Root CA 2017) are in the
            # system trust store; PEMs in the document are trusted in addition.
            "trust": "\n".join(pems) or None,
            "unreachable": "azure-unreachable" in self.settings.faults,
        }

    def _connect_azure(self, azure: dict[str, Any]) -> None:
        if azure.get("unreachable"):
            raise ConnectionError("simulated: no route to Azure")
        client = IoTHubDeviceClient.create_from_x509_certificate(
            x509=X509(self.settings.cert_file, self.settings.key_file),
            hostname=azure["hostName"],
            device_id=azure["deviceId"],
            gateway_hostname=azure.get("gatewayHostName"),
            server_verification_cert=azure.get("trust"),
            connection_retry=False,
        )
        try:
            client.connect()
        except BaseException:
            with contextlib.suppress(Exception):
                client.shutdown()
            raise
        self.azure = client


def main(argv: list[str] | None = None) -> None:
    """Run the agent until interrupted."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--state", type=Path, required=True)
    parser.add_argument("--thing", required=True)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--ca")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    agent = MigrationAgent(
        AgentSettings(args.thing, args.cert, args.key, args.endpoint, args.ca), args.state
    )
    agent.start()
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        agent.stop()


if __name__ == "__main__":
    main()
