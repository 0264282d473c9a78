"""Devices and the bridge on the AWS stand-in, through Amazon's awsiotsdk (awscrt MQTT 5)."""

from __future__ import annotations

import contextlib
import json
import queue
import ssl
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import aiomqtt
from awscrt import mqtt5
from awsiot import mqtt5_client_builder

from bridge.aws.crt import Lifeline
from bridge_sim.aws.standin import AwsStandIn

TIMEOUT = 10.0


def device_policy(region: str, account: str = "123456789012") -> str:
    """The usual per-thing policy: a thing may only use its own client id and topics."""
    arn = f"arn:aws:iot:{region}:{account}"
    thing = "${iot:Connection.Thing.ThingName}"
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": "iot:Connect", "Resource": f"{arn}:client/{thing}"},
                {
                    "Effect": "Allow",
                    "Action": ["iot:Publish", "iot:Receive"],
                    "Resource": [f"{arn}:topic/$aws/things/{thing}/*", f"{arn}:topic/dt/{thing}"],
                },
                {
                    "Effect": "Allow",
                    "Action": "iot:Subscribe",
                    "Resource": f"{arn}:topicfilter/$aws/things/{thing}/*",
                },
            ],
        }
    )


@dataclass
class Thing:
    name: str
    certificate_id: str
    certificate_arn: str
    cert_pem: str
    key_pem: str


def register_thing(iot: Any, name: str, region: str) -> Thing:
    """Create a thing with an AWS-issued certificate and the per-thing policy, via boto3."""
    iot.create_thing(thingName=name)
    cert = iot.create_keys_and_certificate(setAsActive=True)
    with contextlib.suppress(iot.exceptions.ResourceAlreadyExistsException):
        iot.create_policy(policyName="per-thing", policyDocument=device_policy(region))
    iot.attach_policy(policyName="per-thing", target=cert["certificateArn"])
    iot.attach_thing_principal(thingName=name, principal=cert["certificateArn"])
    return Thing(
        name,
        cert["certificateId"],
        cert["certificateArn"],
        cert["certificatePem"],
        cert["keyPair"]["PrivateKey"],
    )


@dataclass
class Device:
    """An awscrt MQTT 5 client and what happened to it."""

    client: mqtt5.Client
    connected: Future[Any] = field(default_factory=Future)
    stopped: Future[Any] = field(default_factory=Future)
    failures: queue.Queue[Any] = field(default_factory=queue.Queue)

    def stop(self) -> None:
        """Disconnect cleanly; waits for awscrt's stopped event, which it now and then
        delivers late on a busy machine, so a missing event is not a test failure (the
        client's Lifeline keeps it alive until then)."""
        self.client.stop(mqtt5.DisconnectPacket())
        with contextlib.suppress(TimeoutError):
            self.stopped.result(TIMEOUT)


def connect_device(
    aws: AwsStandIn, thing: Thing, *, client_id: str | None = None, wait: bool = True
) -> Device:
    """Connect over mutual TLS as AWS IoT devices do, with the stand-in's root CA."""
    holder: dict[str, Device] = {}

    def on_success(_data: Any) -> None:
        device = holder["device"]
        if not device.connected.done():
            device.connected.set_result(True)

    def on_failure(data: Any) -> None:
        holder["device"].failures.put(data)

    def on_stopped(_data: Any) -> None:
        holder["device"].stopped.set_result(True)

    lifeline = Lifeline(on_stopped)

    assert aws.broker is not None
    client = mqtt5_client_builder.mtls_from_bytes(
        cert_bytes=thing.cert_pem.encode(),
        pri_key_bytes=thing.key_pem.encode(),
        endpoint=aws.host,
        port=aws.broker.tls_port,
        ca_bytes=aws.root_ca.cert_pem.encode(),
        client_id=client_id or thing.name,
        on_lifecycle_connection_success=on_success,
        on_lifecycle_connection_failure=on_failure,
        on_lifecycle_stopped=lifeline.stopped,
        min_reconnect_delay_ms=200,
        max_reconnect_delay_ms=1000,
    )
    device = Device(lifeline.hold(client))
    holder["device"] = device
    client.start()
    if wait:
        device.connected.result(TIMEOUT)
    return device


class Inbox:
    """Collects callback payloads from any thread; `take` waits for one that matches."""

    def __init__(self) -> None:
        self.items: queue.Queue[Any] = queue.Queue()

    def __call__(self, item: Any) -> None:
        self.items.put(item)

    def take(
        self, match: Callable[[Any], bool] = lambda _item: True, timeout: float = TIMEOUT
    ) -> Any:
        end = time.monotonic() + timeout
        while True:
            remaining = end - time.monotonic()
            if remaining <= 0:
                raise AssertionError("no matching message arrived in time")
            try:
                item = self.items.get(timeout=remaining)
            except queue.Empty as exc:
                raise AssertionError("no matching message arrived in time") from exc
            if match(item):
                return item


def bridge_tls(aws: AwsStandIn) -> ssl.SSLContext:
    """The TLS context the bridge connects with: its own certificate, the stand-in's CA."""
    context = ssl.create_default_context(cafile=str(aws.root_ca_path))
    context.load_cert_chain(str(aws.bridge_cert_path), str(aws.bridge_key_path))
    return context


def bridge_client(aws: AwsStandIn, client_id: str = "iot-bridge-test") -> aiomqtt.Client:
    """An aiomqtt client with the bridge's identity (its least-privilege policy applies)."""
    assert aws.broker is not None
    return aiomqtt.Client(
        aws.host, aws.broker.tls_port, identifier=client_id, tls_context=bridge_tls(aws)
    )
