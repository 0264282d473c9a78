"""Helpers for reverse-path tests: a device on Azure with its AWS certificate, and a plain
MQTT subscriber on the AWS stand-in."""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Self

import aiomqtt
from azure.iot.device import X509, Message
from azure.iot.device.aio import IoTHubDeviceClient

from bridge.azure.module_client import close_module_client
from bridge.core.machine import State
from bridge.core.store import open_store
from tests.aws_devices import Thing


@contextlib.asynccontextmanager
async def azure_device(env: dict[str, str], thing: Thing, workdir: Path) -> AsyncIterator[Any]:
    """The thing connected to IoT Hub as itself, with its AWS certificate (X.509 thumbprint)."""
    workdir.mkdir(parents=True, exist_ok=True)
    cert, key = workdir / f"{thing.name}.crt", workdir / f"{thing.name}.key"
    cert.write_text(thing.cert_pem)
    key.write_text(thing.key_pem)
    key.chmod(0o600)
    client = IoTHubDeviceClient.create_from_x509_certificate(
        x509=X509(str(cert), str(key)),
        hostname=env["IOTHUB_HOSTNAME"],
        device_id=thing.name,
        gateway_hostname=env["IOTHUB_GATEWAY_HOST"],
        server_verification_cert=Path(env["IOTHUB_ROOT_CA"]).read_text(),
        connection_retry=False,
    )
    try:
        await client.connect()
        yield client
    finally:
        await close_module_client(thing.name, client, timeout=30)


async def send(client: Any, body: dict[str, Any], aws_topic: str | None = None) -> None:
    message = Message(json.dumps(body), content_encoding="utf-8", content_type="application/json")
    if aws_topic is not None:
        message.custom_properties["awsTopic"] = aws_topic
    await client.send_message(message)


class Subscriber:
    """A plain MQTT client on the AWS stand-in (mutual TLS, the bridge's certificate, a
    client id of its own) that keeps every message of its filters, in arrival order."""

    def __init__(self, env: dict[str, str], filters: list[str], client_id: str) -> None:
        self.env = env
        self.filters = filters
        self.client_id = client_id
        self.messages: list[tuple[str, dict[str, Any]]] = []
        self.ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Self:
        self._task = asyncio.create_task(self._run())
        async with asyncio.timeout(30):
            await self.ready.wait()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _run(self) -> None:
        env = self.env
        context = ssl.create_default_context(cafile=env["AWS_IOT_ROOT_CA"])
        context.load_cert_chain(env["AWS_IOT_BRIDGE_CERT"], env["AWS_IOT_BRIDGE_KEY"])
        host, port = env["AWS_IOT_DATA_ENDPOINT"].rsplit(":", 1)
        async with aiomqtt.Client(
            host, int(port), identifier=self.client_id, tls_context=context
        ) as client:
            for topic_filter in self.filters:
                await client.subscribe(topic_filter, qos=1)
            self.ready.set()
            async for message in client.messages:
                payload = message.payload
                assert isinstance(payload, bytes)
                self.messages.append((str(message.topic), json.loads(payload)))

    async def until(self, count: int, timeout: float = 60.0) -> list[tuple[str, dict[str, Any]]]:
        async with asyncio.timeout(timeout):
            while len(self.messages) < count:
                await asyncio.sleep(0.05)
        return self.messages


async def until_mirrored(dsn, device_id):
    """The child daemon's store shows the device mirrored (it may lag Azure a little)."""
    async with asyncio.timeout(30):
        while True:
            async with open_store(dsn) as store:
                device = await store.get_device(device_id)
            if device is not None and device.state is State.MIRRORED:
                return
            await asyncio.sleep(0.1)
