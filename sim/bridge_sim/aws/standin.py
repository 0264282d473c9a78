"""The AWS IoT Core stand-in: moto, mosquitto and the glue between them, as one object.

    async with AwsStandIn(workdir=path) as aws:
        env = aws.env()   # AWS_ENDPOINT_URL, AWS_IOT_DATA_ENDPOINT, certificates, ...

moto's state is process-wide: run one stand-in per process at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from typing import TYPE_CHECKING, Any, Self

from moto.iot.models import FakeEndpoint

from bridge.logging import get_logger
from bridge_sim.aws.broker import MosquittoBroker
from bridge_sim.aws.certs import CertificateRegistry
from bridge_sim.aws.data_publish import HttpPublish
from bridge_sim.aws.event_config import REGISTRY_EVENT_TYPES, EventConfigurations
from bridge_sim.aws.indexing import FleetIndex
from bridge_sim.aws.jobs import JobsEngine
from bridge_sim.aws.moto_server import MotoServer
from bridge_sim.aws.publisher import GlueClient
from bridge_sim.aws.registry_events import RegistryEvents
from bridge_sim.aws.retained import RetainedMessages
from bridge_sim.aws.shadows import ShadowService
from bridge_sim.aws.things import ThingRules
from bridge_sim.pki import CertificateAuthority

if TYPE_CHECKING:
    from pathlib import Path
    from types import TracebackType

__all__ = ["BRIDGE_CLIENT_ID_PREFIX", "AwsStandIn", "bridge_policy"]

log = get_logger("sim.aws")
BRIDGE_CLIENT_ID_PREFIX = "iot-bridge"
ACCESS_KEY_ID = "AKIASTANDIN00000000"  # moto accepts any credentials; these are placeholders
SECRET_ACCESS_KEY = "standin-secret-access-key"  # noqa: S105 - not a secret: moto ignores it


_NO_QUOTAS: dict[str, Any] = {"connect_rate": None, "max_subscriptions": None, "publish_rate": None}


def bridge_policy(region: str, account: str) -> dict[str, Any]:
    """The least-privilege IoT policy the bridge's own certificate needs on AWS."""
    arn = f"arn:aws:iot:{region}:{account}"
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "iot:Connect",
                "Resource": f"{arn}:client/{BRIDGE_CLIENT_ID_PREFIX}*",
            },
            {
                # Registry and presence events, shadows, job events and device telemetry.
                "Effect": "Allow",
                "Action": ["iot:Subscribe"],
                "Resource": f"{arn}:topicfilter/*",
            },
            {"Effect": "Allow", "Action": ["iot:Receive"], "Resource": f"{arn}:topic/*"},
            {
                # After cutover the bridge writes what a device reports on Azure back to
                # its AWS shadow.
                "Effect": "Allow",
                "Action": "iot:Publish",
                "Resource": [
                    f"{arn}:topic/$aws/things/*/shadow/update",
                    f"{arn}:topic/$aws/things/*/shadow/name/*/update",
                    f"{arn}:topic/$aws/things/*/shadow/get",
                    f"{arn}:topic/$aws/things/*/shadow/name/*/get",
                ],
            },
            {
                # The reverse path republishes cut-over devices' telemetry on their old
                # topics (narrow this to the fleet's telemetry topics), never as AWS itself.
                "Effect": "Allow",
                "Action": "iot:Publish",
                "Resource": f"{arn}:topic/*",
            },
            {"Effect": "Deny", "Action": "iot:Publish", "Resource": f"{arn}:topic/$aws/events/*"},
        ],
    }


class AwsStandIn:
    """moto (control plane and shadow REST), mosquitto (mutual-TLS MQTT) and the glue."""

    def __init__(
        self,
        *,
        workdir: Path,
        region: str = "us-east-1",
        host: str = "127.0.0.1",
        aws_quotas: bool = True,
        registry_events: bool = True,
    ) -> None:
        """`aws_quotas=False` lifts AWS IoT's per-connection quotas (connect rate,
        subscriptions, publish rate) for load tests that exceed them on purpose.
        `registry_events=False` starts as a new AWS account does: every event type off
        until UpdateEventConfigurations enables it."""
        self.workdir = workdir
        self.region = region
        self.host = host
        self.aws_quotas = aws_quotas
        self.moto = MotoServer(region=region, host=host)
        self.root_ca = CertificateAuthority.create("Stand-in Amazon Root CA 1")
        self.device_ca = CertificateAuthority.create("Stand-in AWS IoT device CA")
        prefix = secrets.token_hex(7)
        self.endpoint_address = f"{prefix}-ats.iot.{region}.amazonaws.com"
        # DescribeEndpoint: created on first call, the same on every later one, per type;
        # iot:Data is the legacy (VeriSign) name of the same data endpoint.
        self._endpoints = {
            "iot:Data-ATS": self.endpoint_address,
            "iot:Data": f"{prefix}.iot.{region}.amazonaws.com",
            "iot:Jobs": f"{secrets.token_hex(7)}.jobs.iot.{region}.amazonaws.com",
            "iot:CredentialProvider": (
                f"{secrets.token_hex(7)}.credentials.iot.{region}.amazonaws.com"
            ),
        }
        self.broker: MosquittoBroker | None = None
        self.glue: GlueClient | None = None
        self.shadows: ShadowService | None = None
        self.jobs: JobsEngine | None = None
        self.index: FleetIndex | None = None
        self.events = EventConfigurations(REGISTRY_EVENT_TYPES if registry_events else ())
        self._rules: ThingRules | None = None
        self._certs: CertificateRegistry | None = None
        self._http_publish: HttpPublish | None = None
        self._retained: RetainedMessages | None = None
        self._stack = contextlib.AsyncExitStack()
        self._tasks: list[asyncio.Task[None]] = []
        self.bridge_cert_path = workdir / "bridge" / "bridge.crt"
        self.bridge_key_path = workdir / "bridge" / "bridge.key"
        self.root_ca_path = workdir / "bridge" / "AmazonRootCA1.pem"

    async def __aenter__(self) -> Self:
        try:
            await self._start()
        except BaseException:
            await self._stop()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._stop()

    async def _start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        # moto's werkzeug server logs every request at INFO; keep the console readable.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        server_cert = self.root_ca.issue_server(
            "localhost", self.host, self.endpoint_address, self._endpoints["iot:Data"]
        )
        self.broker = MosquittoBroker(
            workdir=self.workdir / "mosquitto",
            server_cert=server_cert,
            trust_pems=[self.device_ca.cert_pem],
            host=self.host,
            region=self.region,
            account_id=self.moto.account_id,
            **({} if self.aws_quotas else _NO_QUOTAS),
        )
        await self._stack.enter_async_context(self.broker)
        self.glue = GlueClient(host=self.host, port=self.broker.plain_port)
        self.glue.bind_loop()
        publish = self.events.gate(self.glue.publish)
        await asyncio.to_thread(self.moto.start)
        self.events.install()
        self._rules = ThingRules(moto=self.moto)
        self._rules.install()  # first: events must see the bumped version
        RegistryEvents(moto=self.moto, publish=publish).install()
        self.shadows = ShadowService(moto=self.moto, publish=publish)
        self.shadows.install()
        self.glue.route(self.shadows.SUBSCRIPTIONS, self.shadows.handle)
        self.index = FleetIndex(moto=self.moto, shadows=self.shadows)
        self.index.install()
        self.glue.route(FleetIndex.PRESENCE, self.index.presence)
        self.jobs = JobsEngine(moto=self.moto, publish=publish)
        self.jobs.install()
        self.glue.route(JobsEngine.SUBSCRIPTIONS, self.jobs.handle)
        self.moto.iot.describe_endpoint = self._describe_endpoint
        self._retained = RetainedMessages(host=self.host, port=self.broker.plain_port)
        self._retained.install()
        self._http_publish = HttpPublish(self.glue.publish, self._retained.published)
        self._http_publish.install()
        self._certs = CertificateRegistry(
            moto=self.moto, device_ca=self.device_ca, apply=self.broker.set_principals
        )
        self._certs.install()
        self._tasks.append(asyncio.create_task(self.glue.run(), name="sim.aws.glue"))
        self._tasks.append(asyncio.create_task(self.jobs.run(), name="sim.aws.jobs"))
        await self.glue.wait_connected()
        self._create_bridge_identity()
        log.info(
            "sim.aws.started",
            endpoint_url=self.moto.endpoint_url,
            data_endpoint=self.data_endpoint,
            region=self.region,
        )

    def _describe_endpoint(self, endpoint_type: str) -> Any:
        endpoint = FakeEndpoint(endpoint_type, self.region)  # validates the type like AWS
        endpoint.endpoint = self._endpoints[endpoint_type]
        return endpoint

    def _create_bridge_identity(self) -> None:
        backend = self.moto.iot
        cert, keys = backend.create_keys_and_certificate(set_as_active=True)
        backend.create_policy(
            policy_name="iot-bridge",
            policy_document=json.dumps(bridge_policy(self.region, self.moto.account_id)),
        )
        backend.attach_policy(policy_name="iot-bridge", target=cert.arn)
        self.bridge_cert_path.parent.mkdir(parents=True, exist_ok=True)
        self.bridge_cert_path.write_text(cert.certificate_pem)
        self.bridge_key_path.touch(mode=0o600)
        self.bridge_key_path.write_text(keys["PrivateKey"])
        self.root_ca_path.write_text(self.root_ca.cert_pem)

    async def _stop(self) -> None:
        if self.glue is not None:
            self.glue.stop()
        for task in self._tasks:
            task.cancel()
        # aiomqtt 2.0 waits without a timeout for the broker to acknowledge a disconnect;
        # if that never comes, stopping the broker below ends the wait.
        _done, pending = await asyncio.wait(self._tasks, timeout=2) if self._tasks else ((), set())
        if self._certs is not None:
            self._certs.uninstall()
        if self._http_publish is not None:
            self._http_publish.uninstall()
        if self._retained is not None:
            self._retained.uninstall()
        self.events.uninstall()
        if self.index is not None:
            self.index.uninstall()
        if self._rules is not None:
            self._rules.uninstall()
        with contextlib.suppress(AssertionError):  # never started
            await asyncio.to_thread(self.moto.stop)
        await self._stack.aclose()
        if pending:
            _done, still = await asyncio.wait(pending, timeout=5)
            if still:
                log.warning("sim.aws.tasks_left_running", tasks=[t.get_name() for t in still])
        for task in self._tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                log.error("sim.aws.task_failed", task=task.get_name(), error=str(task.exception()))
        self._tasks.clear()

    @property
    def data_endpoint(self) -> str:
        """host:port of the mutual-TLS MQTT listener."""
        assert self.broker is not None
        return f"{self.host}:{self.broker.tls_port}"

    def env(self) -> dict[str, str]:
        """The settings clients need, under the names the bridge reads for real AWS."""
        return {
            "AWS_REGION": self.region,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
            "AWS_ENDPOINT_URL": self.moto.endpoint_url,
            "AWS_IOT_DATA_ENDPOINT": self.data_endpoint,
            "AWS_IOT_ROOT_CA": str(self.root_ca_path),
            "AWS_IOT_BRIDGE_CERT": str(self.bridge_cert_path),
            "AWS_IOT_BRIDGE_KEY": str(self.bridge_key_path),
        }
