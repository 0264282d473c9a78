"""The mosquitto stand-in for the AWS IoT data endpoint, driven by real MQTT clients."""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiomqtt
import pytest
from awscrt import mqtt5
from awsiot import mqtt5_client_builder
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from bridge.aws.crt import Lifeline
from bridge_sim.aws.authz import Principal
from bridge_sim.aws.broker import MosquittoBroker, build_plugin
from bridge_sim.errors import SimulatorError
from bridge_sim.pki import CertificateAuthority, IssuedCertificate, der_sha256, self_signed

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

ARN = "arn:aws:iot:us-east-1:123456789012"
ALLOW_ALL = json.dumps({"Statement": [{"Effect": "Allow", "Action": "iot:*", "Resource": "*"}]})
THING_POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "iot:Connect",
                "Resource": f"{ARN}:client/${{iot:Connection.Thing.ThingName}}",
            },
            {
                "Effect": "Allow",
                "Action": ["iot:Publish", "iot:Receive"],
                "Resource": f"{ARN}:topic/things/${{iot:Connection.Thing.ThingName}}/*",
            },
            {
                "Effect": "Allow",
                "Action": "iot:Subscribe",
                "Resource": f"{ARN}:topicfilter/things/${{iot:Connection.Thing.ThingName}}/*",
            },
            {
                "Effect": "Deny",
                "Action": "iot:Publish",
                "Resource": "arn:aws:iot:*:*:topic/things/*/secret",
            },
        ],
    }
)
WAIT = 5.0


@dataclass(frozen=True)
class Pki:
    device_ca: CertificateAuthority
    server_ca: CertificateAuthority
    server: IssuedCertificate


@dataclass(frozen=True)
class Device:
    cert: IssuedCertificate
    cert_path: Path
    key_path: Path

    def principal(
        self, status: str = "ACTIVE", things: tuple[str, ...] = (), policy: str = ALLOW_ALL
    ) -> Principal:
        return Principal(
            der_sha256(self.cert.cert_pem), self.cert.cert_pem, status, things, (policy,)
        )


@pytest.fixture(scope="module")
def pki() -> Pki:
    server_ca = CertificateAuthority.create("stand-in server ca")
    return Pki(
        CertificateAuthority.create("aws device ca"),
        server_ca,
        server_ca.issue_server("127.0.0.1", "localhost"),
    )


@pytest.fixture
async def broker(pki: Pki, tmp_path: Path) -> AsyncIterator[MosquittoBroker]:
    # These tests reconnect one client id quickly (takeovers, retries): no CONNECT quota.
    async with MosquittoBroker(
        workdir=tmp_path / "broker",
        server_cert=pki.server,
        trust_pems=[pki.device_ca.cert_pem],
        connect_rate=None,
    ) as running:
        yield running


@pytest.fixture
async def aws_quotas(pki: Pki, tmp_path: Path) -> AsyncIterator[MosquittoBroker]:
    """A broker with AWS IoT Core's per-connection quotas, the defaults."""
    async with MosquittoBroker(
        workdir=tmp_path / "broker", server_cert=pki.server, trust_pems=[pki.device_ca.cert_pem]
    ) as running:
        yield running


DeviceFactory = Callable[..., Device]


@pytest.fixture
def device_factory(pki: Pki, tmp_path: Path) -> DeviceFactory:
    def make(name: str, cert: IssuedCertificate | None = None) -> Device:
        issued = cert or pki.device_ca.issue(name)
        cert_path, key_path = issued.write(tmp_path / "devices", name)
        return Device(issued, cert_path, key_path)

    return make


def tls_context(pki: Pki, device: Device) -> ssl.SSLContext:
    context = ssl.create_default_context(cadata=pki.server_ca.cert_pem)
    context.load_cert_chain(device.cert_path, device.key_path)
    return context


async def handshake_error(broker: MosquittoBroker, pki: Pki, device: Device) -> str:
    """The TLS alert a device gets; TLS 1.2 because 1.3 clients only see a closed connection."""
    context = tls_context(pki, device)
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    with pytest.raises(ssl.SSLError) as failed:
        await asyncio.open_connection(broker.host, broker.tls_port, ssl=context)
    return str(failed.value).lower()


def mqtt(
    broker: MosquittoBroker,
    pki: Pki,
    device: Device,
    client_id: str,
    *,
    v5: bool = False,
    **kwargs: Any,
) -> aiomqtt.Client:
    context = tls_context(pki, device)
    protocol = aiomqtt.ProtocolVersion.V5 if v5 else aiomqtt.ProtocolVersion.V311
    return aiomqtt.Client(
        broker.host,
        broker.tls_port,
        identifier=client_id,
        tls_context=context,
        protocol=protocol,
        **kwargs,
    )


def plain(broker: MosquittoBroker, **kwargs: Any) -> aiomqtt.Client:
    return aiomqtt.Client(broker.host, broker.plain_port, **kwargs)


async def next_message(client: aiomqtt.Client, timeout: float = WAIT) -> aiomqtt.Message:
    return await asyncio.wait_for(anext(client.messages), timeout)


async def assert_refused(client: aiomqtt.Client) -> aiomqtt.MqttError:
    with pytest.raises(aiomqtt.MqttError) as refused:
        await client.__aenter__()
    # paho leaves a refused socket open until garbage collection, whose ResourceWarning
    # would fail whichever test runs then.
    leftover = client._client.socket()
    if leftover is not None:
        leftover.close()
    return refused.value


async def assert_not_authorized(client: aiomqtt.Client) -> None:
    """CONNACK 5 (MQTT 3.1.1 "not authorized"), which is what AWS IoT answers too."""
    refused = await assert_refused(client)
    assert isinstance(refused, aiomqtt.MqttCodeError)
    assert refused.rc == 5


async def assert_serving(broker: MosquittoBroker, pki: Pki, device: Device, client_id: str) -> None:
    """A known-good client still connects and round-trips a message."""
    async with mqtt(broker, pki, device, client_id) as client:
        await client.subscribe(f"things/{client_id}/echo", qos=1)
        await client.publish(f"things/{client_id}/echo", b"ping", qos=1)
        assert (await next_message(client)).payload == b"ping"


@contextlib.asynccontextmanager
async def dropped_by_broker(client: aiomqtt.Client) -> AsyncIterator[aiomqtt.Client]:
    """Connect `client`; once the body is done, the broker must disconnect it."""
    await client.__aenter__()
    try:
        yield client
        with pytest.raises(aiomqtt.MqttError):
            await next_message(client)
    finally:
        # Leaving a client the broker dropped re-raises the drop; it is what we expect here.
        with contextlib.suppress(aiomqtt.MqttError):
            await client.__aexit__(None, None, None)


@contextlib.asynccontextmanager
async def presence_watcher(broker: MosquittoBroker) -> AsyncIterator[aiomqtt.Client]:
    async with plain(broker) as watcher:
        await watcher.subscribe("$aws/events/presence/#", qos=1)
        yield watcher


async def next_presence(watcher: aiomqtt.Client) -> tuple[str, dict[str, Any]]:
    message = await next_message(watcher)
    assert isinstance(message.payload, bytes)
    return str(message.topic), json.loads(message.payload)


async def stop_crt_client(client: mqtt5.Client, stopped: asyncio.Future[Any]) -> None:
    """Stop an awscrt client; its Lifeline keeps it alive until awscrt reports the stop,
    which now and then comes late on a busy machine, so a late one is not a failure."""
    client.stop(mqtt5.DisconnectPacket())
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.shield(stopped), WAIT)


async def test_registered_active_certificate_connects_others_are_refused(
    broker: MosquittoBroker, pki: Pki, device_factory: DeviceFactory
) -> None:
    good, inactive, revoked, unknown = (
        device_factory(n) for n in ("good", "inactive", "revoked", "unknown")
    )
    broker.set_principals(
        [good.principal(), inactive.principal("INACTIVE"), revoked.principal("REVOKED")]
    )
    await assert_serving(broker, pki, good, "good")
    _, writer = await asyncio.open_connection(
        broker.host, broker.tls_port, ssl=tls_context(pki, good)
    )
    assert writer.get_extra_info("ssl_object").version() == "TLSv1.3"
    writer.close()
    await writer.wait_closed()
    for device in (inactive, revoked, unknown):
        await assert_not_authorized(mqtt(broker, pki, device, device.cert_path.stem))
        await assert_serving(broker, pki, good, "good")
    assert "not registered and ACTIVE" in broker.log_path.read_text()


async def test_deactivation_refuses_next_connect_and_drops_live_one(
    broker: MosquittoBroker, pki: Pki, device_factory: DeviceFactory
) -> None:
    device = device_factory("dev-1")
    broker.set_principals([device.principal()])
    async with presence_watcher(broker) as watcher:
        # As AWS does, deactivation also closes the live connection.
        async with dropped_by_broker(mqtt(broker, pki, device, "dev-1")):
            assert (await next_presence(watcher))[0] == "$aws/events/presence/connected/dev-1"
            broker.set_principals([device.principal("INACTIVE")])
            # No restart: the very next CONNECT is refused.
            await assert_not_authorized(mqtt(broker, pki, device, "dev-2"))
            topic, event = await next_presence(watcher)
            assert topic == "$aws/events/presence/disconnected/dev-1"
            assert event["disconnectReason"] == "AUTH_ERROR"
        broker.set_principals([device.principal()])
        await assert_serving(broker, pki, device, "dev-1")


async def test_foreign_certificate_fails_tls(
    broker: MosquittoBroker, pki: Pki, device_factory: DeviceFactory
) -> None:
    good = device_factory("good")
    foreign = device_factory(
        "foreign", CertificateAuthority.create("someone else").issue("foreign")
    )
    # Registered but issued by a CA nobody registered: the handshake fails before the plugin.
    broker.set_principals([good.principal(), foreign.principal()])
    assert "unknown ca" in await handshake_error(broker, pki, foreign)
    await assert_serving(broker, pki, good, "good")
    log = broker.log_path.read_text()
    assert "certificate verify failed" in log
    assert "iot_authz: refused foreign" not in log


async def test_self_signed_certificate_registered_later_connects(
    broker: MosquittoBroker, pki: Pki, device_factory: DeviceFactory
) -> None:
    maker = device_factory("maker-1", self_signed("maker-1"))
    good = device_factory("good")
    broker.set_principals([good.principal()])
    assert "unknown ca" in await handshake_error(broker, pki, maker)
    # register_certificate_without_ca: the certificate becomes its own trust anchor.
    broker.set_principals([good.principal(), maker.principal()])
    await assert_serving(broker, pki, maker, "maker-1")


async def test_per_thing_policy(
    broker: MosquittoBroker, pki: Pki, device_factory: DeviceFactory
) -> None:
    device, orphan = device_factory("dev-1"), device_factory("orphan")
    broker.set_principals(
        [
            device.principal(things=("dev-1",), policy=THING_POLICY),
            orphan.principal(policy=THING_POLICY),
        ]
    )
    # iot:Connect only as the attached thing's name; no attached thing, no ThingName.
    await assert_not_authorized(mqtt(broker, pki, device, "dev-2"))
    await assert_not_authorized(mqtt(broker, pki, orphan, "orphan"))
    async with plain(broker) as observer, mqtt(broker, pki, device, "dev-1", v5=True) as client:
        await observer.subscribe("things/#", qos=1)
        granted = await client.subscribe([("things/dev-1/in", 1), ("things/dev-2/#", 1)])
        assert isinstance(granted, list)
        assert [code.value for code in granted] == [1, 0x87]
        await client.publish("things/dev-2/out", b"not mine", qos=1)
        await client.publish("things/dev-1/secret", b"denied beats allowed", qos=1)
        await client.publish(
            "things/dev-1/out", b"retained needs RetainPublish", qos=1, retain=True
        )
        await client.publish("things/dev-1/out", b"mine", qos=1)
        # Per-connection order is kept, so the denied ones would have arrived first.
        message = await next_message(observer)
        assert (str(message.topic), message.payload) == ("things/dev-1/out", b"mine")
        await observer.publish("things/dev-1/in", b"for dev-1", qos=1)
        message = await next_message(client)
        assert (str(message.topic), message.payload) == ("things/dev-1/in", b"for dev-1")


async def test_receive_is_checked_separately_from_subscribe(
    broker: MosquittoBroker, pki: Pki, device_factory: DeviceFactory
) -> None:
    device = device_factory("dev-1")
    document = json.dumps(
        {
            "Statement": [
                {"Effect": "Allow", "Action": ["iot:Connect", "iot:Subscribe"], "Resource": "*"},
                {"Effect": "Allow", "Action": "iot:Receive", "Resource": f"{ARN}:topic/fleet/ok"},
            ]
        }
    )
    broker.set_principals([device.principal(policy=document)])
    async with plain(broker) as publisher, mqtt(broker, pki, device, "dev-1") as client:
        assert list(await client.subscribe("fleet/#", qos=1)) == [1]
        await publisher.publish("fleet/hidden", b"no", qos=1)
        await publisher.publish("fleet/ok", b"yes", qos=1)
        message = await next_message(client)
        assert (str(message.topic), message.payload) == ("fleet/ok", b"yes")


async def test_mqtt311_client_publishing_outside_policy_is_disconnected(
    broker: MosquittoBroker, pki: Pki, device_factory: DeviceFactory
) -> None:
    device = device_factory("dev-1")
    broker.set_principals([device.principal(things=("dev-1",), policy=THING_POLICY)])
    async with presence_watcher(broker) as watcher:
        async with dropped_by_broker(mqtt(broker, pki, device, "dev-1")) as client:
            await next_presence(watcher)
            await client.publish("things/dev-2/out", b"x", qos=1)
        topic, event = await next_presence(watcher)
        assert topic == "$aws/events/presence/disconnected/dev-1"
        assert (event["disconnectReason"], event["clientInitiatedDisconnect"]) == (
            "FORBIDDEN_ACCESS",
            False,
        )
    await assert_serving(broker, pki, device, "dev-1")


async def test_presence_events(
    broker: MosquittoBroker, pki: Pki, device_factory: DeviceFactory
) -> None:
    device = device_factory("dev-1")
    certificate_id = "a" * 64
    broker.set_principals(
        [Principal(certificate_id, device.cert.cert_pem, "ACTIVE", (), (ALLOW_ALL,))]
    )
    async with presence_watcher(broker) as watcher:
        async with mqtt(broker, pki, device, "dev-1"):
            topic, connected = await next_presence(watcher)
        assert topic == "$aws/events/presence/connected/dev-1"
        assert set(connected) == {
            "clientId", "timestamp", "eventType", "sessionIdentifier",
            "principalIdentifier", "ipAddress", "versionNumber",
        }  # fmt: skip
        assert connected["clientId"] == "dev-1"
        assert connected["eventType"] == "connected"
        assert connected["principalIdentifier"] == certificate_id
        assert connected["ipAddress"] == "127.0.0.1"
        assert abs(connected["timestamp"] / 1000 - time.time()) < 60
        topic, gone = await next_presence(watcher)
        assert topic == "$aws/events/presence/disconnected/dev-1"
        assert gone["eventType"] == "disconnected"
        assert gone["sessionIdentifier"] == connected["sessionIdentifier"]
        assert (gone["clientInitiatedDisconnect"], gone["disconnectReason"]) == (
            True,
            "CLIENT_INITIATED_DISCONNECT",
        )
        assert gone["versionNumber"] > connected["versionNumber"]
        # A second connection with the same id takes over the first one.
        async with dropped_by_broker(mqtt(broker, pki, device, "dev-1")):
            _, first = await next_presence(watcher)
            async with mqtt(broker, pki, device, "dev-1"):
                topic, taken_over = await next_presence(watcher)
                assert topic == "$aws/events/presence/disconnected/dev-1"
                assert taken_over["disconnectReason"] == "DUPLICATE_CLIENTID"
                assert taken_over["sessionIdentifier"] == first["sessionIdentifier"]
                _, second = await next_presence(watcher)
                assert second["eventType"] == "connected"
                assert first["versionNumber"] < taken_over["versionNumber"]
                assert taken_over["versionNumber"] < second["versionNumber"]
                assert first["sessionIdentifier"] != second["sessionIdentifier"]
        # Plain-listener clients (the watcher itself included) never produce presence events.
        async with plain(broker, identifier="glue"):
            pass
        topic, _ = await next_presence(watcher)
        assert topic == "$aws/events/presence/disconnected/dev-1"
        with pytest.raises(TimeoutError):
            await next_message(watcher, timeout=0.5)


async def test_restart_keeps_persistent_sessions(
    broker: MosquittoBroker, pki: Pki, device_factory: DeviceFactory
) -> None:
    device = device_factory("dev-1")
    broker.set_principals([device.principal()])
    properties = Properties(PacketTypes.CONNECT)
    properties.SessionExpiryInterval = 3600
    persistent = {"v5": True, "clean_start": False, "properties": properties}
    versions = []
    async with presence_watcher(broker) as watcher:
        async with mqtt(broker, pki, device, "dev-1", **persistent) as client:
            await client.subscribe("things/dev-1/in", qos=1)
        versions += [(await next_presence(watcher))[1]["versionNumber"] for _ in range(2)]
        async with plain(broker) as publisher:
            await publisher.publish("things/dev-1/in", b"queued", qos=1)
    tls_port, plain_port = broker.tls_port, broker.plain_port
    await broker.restart()
    assert (broker.tls_port, broker.plain_port) == (tls_port, plain_port)
    async with plain(broker) as publisher:
        await publisher.publish("things/dev-1/in", b"queued after restart", qos=1)
    async with presence_watcher(broker) as watcher:
        async with mqtt(broker, pki, device, "dev-1", **persistent) as client:
            received = [(await next_message(client)).payload for _ in range(2)]
            assert received == [b"queued", b"queued after restart"]
        versions.append((await next_presence(watcher))[1]["versionNumber"])
    assert versions == sorted(versions)
    assert len(set(versions)) == 3


async def test_aws_iot_device_sdk_mqtt5_client(
    broker: MosquittoBroker, pki: Pki, device_factory: DeviceFactory
) -> None:
    device, stranger = device_factory("dev-1"), device_factory("stranger")
    broker.set_principals([device.principal(things=("dev-1",), policy=THING_POLICY)])
    loop = asyncio.get_running_loop()

    def sdk_client(
        who: Device, client_id: str
    ) -> tuple[mqtt5.Client, dict[str, asyncio.Future[Any]]]:
        futures: dict[str, asyncio.Future[Any]] = {
            k: loop.create_future() for k in ("up", "failed", "message", "stopped")
        }

        def settle(key: str) -> Any:
            def resolve(data: Any) -> None:
                if not futures[key].done():
                    futures[key].set_result(data)

            # awscrt calls back on its own threads.
            return lambda data: loop.call_soon_threadsafe(resolve, data)

        lifeline = Lifeline(settle("stopped"))
        client = mqtt5_client_builder.mtls_from_bytes(
            cert_bytes=who.cert.cert_pem.encode(),
            pri_key_bytes=who.cert.key_pem.encode(),
            ca_bytes=pki.server_ca.cert_pem.encode(),
            endpoint=broker.host,
            port=broker.tls_port,
            client_id=client_id,
            on_lifecycle_connection_success=settle("up"),
            on_lifecycle_connection_failure=settle("failed"),
            on_publish_received=settle("message"),
            on_lifecycle_stopped=lifeline.stopped,
        )
        return lifeline.hold(client), futures

    refused, outcome = sdk_client(stranger, "stranger")
    refused.start()
    try:
        failure = await asyncio.wait_for(outcome["failed"], WAIT)
        assert failure.connack_packet.reason_code == mqtt5.ConnectReasonCode.NOT_AUTHORIZED
    finally:
        await stop_crt_client(refused, outcome["stopped"])

    client, futures = sdk_client(device, "dev-1")
    client.start()
    try:
        await asyncio.wait_for(futures["up"], WAIT)
        subscribe = mqtt5.SubscribePacket(
            subscriptions=[mqtt5.Subscription("things/dev-1/in", mqtt5.QoS.AT_LEAST_ONCE)]
        )
        suback = await asyncio.wrap_future(client.subscribe(subscribe))
        assert suback.reason_codes == [mqtt5.SubackReasonCode.GRANTED_QOS_1]
        async with plain(broker) as publisher:
            await publisher.publish("things/dev-1/in", b"hello sdk", qos=1)
        received = await asyncio.wait_for(futures["message"], WAIT)
        assert received.publish_packet.payload == b"hello sdk"
    finally:
        await stop_crt_client(client, futures["stopped"])


def test_missing_build_tools_name_the_debian_packages(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("CC", "no-such-compiler")
    with pytest.raises(SimulatorError, match="gcc, mosquitto-dev and libssl-dev"):
        build_plugin(tmp_path / "cache")
    compiler = tmp_path / "cc-without-headers"
    compiler.write_text(
        "#!/bin/sh\necho 'iot_authz.c:50:10: fatal error: mosquitto_broker.h: "
        "No such file or directory' >&2\nexit 1\n"
    )
    compiler.chmod(0o755)
    monkeypatch.setenv("CC", str(compiler))
    with pytest.raises(SimulatorError, match="mosquitto-dev") as failed:
        build_plugin(tmp_path / "cache")
    assert "mosquitto_broker.h" in str(failed.value)
    assert not list((tmp_path / "cache").iterdir())


async def test_second_connect_within_a_second_per_client_id_is_refused(
    aws_quotas: MosquittoBroker, pki: Pki, device_factory: DeviceFactory
) -> None:
    device = device_factory("dev-1")
    aws_quotas.set_principals([device.principal()])
    async with presence_watcher(aws_quotas) as watcher:
        started = time.monotonic()
        async with mqtt(aws_quotas, pki, device, "dev-1") as first:
            assert (await next_presence(watcher))[0] == "$aws/events/presence/connected/dev-1"
            # MQTT 3.1.1 has no quota code: "server unavailable"; MQTT 5: 0x97 "Quota exceeded".
            refused = await assert_refused(mqtt(aws_quotas, pki, device, "dev-1"))
            assert isinstance(refused, aiomqtt.MqttCodeError)
            assert refused.rc == 3
            refused = await assert_refused(mqtt(aws_quotas, pki, device, "dev-1", v5=True))
            assert isinstance(refused, aiomqtt.MqttCodeError)
            assert refused.rc == 0x97
            # Refused attempts neither take over the live connection nor produce events.
            with pytest.raises(TimeoutError):
                await next_message(watcher, timeout=0.3)
            await first.subscribe("things/dev-1/echo", qos=1)
            await first.publish("things/dev-1/echo", b"still here", qos=1)
            assert (await next_message(first)).payload == b"still here"
            # The quota is per client id, and the stand-in's own loopback clients have none.
            async with mqtt(aws_quotas, pki, device, "dev-2"):
                pass
            for _ in range(2):
                async with plain(aws_quotas, identifier="glue"):
                    pass
        assert time.monotonic() - started < 1.0, "too slow to test a 1 s quota"
        await asyncio.sleep(1.05 - (time.monotonic() - started))
        await assert_serving(aws_quotas, pki, device, "dev-1")


async def test_aws_iot_device_sdk_sees_connect_quota_exceeded(
    aws_quotas: MosquittoBroker, pki: Pki, device_factory: DeviceFactory
) -> None:
    device = device_factory("dev-1")
    aws_quotas.set_principals([device.principal()])
    loop = asyncio.get_running_loop()
    failed: asyncio.Future[Any] = loop.create_future()
    stopped: asyncio.Future[Any] = loop.create_future()

    def settle(future: asyncio.Future[Any]) -> Callable[[Any], None]:
        def resolve(data: Any) -> None:
            if not future.done():
                future.set_result(data)

        # awscrt calls back on its own threads.
        return lambda data: loop.call_soon_threadsafe(resolve, data)

    async with mqtt(aws_quotas, pki, device, "dev-1"):
        lifeline = Lifeline(settle(stopped))
        client = mqtt5_client_builder.mtls_from_bytes(
            cert_bytes=device.cert.cert_pem.encode(),
            pri_key_bytes=device.cert.key_pem.encode(),
            ca_bytes=pki.server_ca.cert_pem.encode(),
            endpoint=aws_quotas.host,
            port=aws_quotas.tls_port,
            client_id="dev-1",
            on_lifecycle_connection_failure=settle(failed),
            on_lifecycle_stopped=lifeline.stopped,
        )
        lifeline.hold(client).start()
        try:
            failure = await asyncio.wait_for(failed, WAIT)
        finally:
            await stop_crt_client(client, stopped)
    assert failure.connack_packet.reason_code == mqtt5.ConnectReasonCode.QUOTA_EXCEEDED


async def test_connect_quota_switched_off(
    broker: MosquittoBroker, pki: Pki, device_factory: DeviceFactory
) -> None:
    device = device_factory("dev-1")
    broker.set_principals([device.principal()])
    for v5 in (False, True, False):
        async with mqtt(broker, pki, device, "dev-1", v5=v5):
            pass
    with pytest.raises(ValueError, match="positive or None"):
        MosquittoBroker(
            workdir=Path(),
            server_cert=pki.server,
            trust_pems=[],
            connect_rate=0,
        )


async def test_fifty_subscriptions_per_connection(
    aws_quotas: MosquittoBroker, pki: Pki, device_factory: DeviceFactory
) -> None:
    device = device_factory("dev-1")
    aws_quotas.set_principals([device.principal()])
    filters = [f"things/dev-1/sub{i}" for i in range(51)]
    batches = [filters[start : min(start + 8, 50)] for start in range(0, 50, 8)]
    async with plain(aws_quotas) as publisher, mqtt(aws_quotas, pki, device, "dev-1") as client:
        # AWS takes at most 8 filters per SUBSCRIBE.
        for batch in batches:
            assert list(await client.subscribe([(f, 1) for f in batch])) == [1] * len(batch)
        # The 51st is refused; subscribing again to a held filter takes no new slot.
        assert list(await client.subscribe([(filters[50], 1), (filters[0], 1)])) == [0x80, 1]
        for topic in (filters[50], filters[0], filters[49]):
            await publisher.publish(topic, topic.encode(), qos=1)
        assert [str((await next_message(client)).topic) for _ in range(2)] == [
            filters[0],
            filters[49],
        ]
        # Unsubscribing frees a slot.
        await client.unsubscribe(filters[0])
        assert list(await client.subscribe(filters[50], qos=1)) == [1]
        assert list(await client.subscribe(filters[0], qos=1)) == [0x80]
    async with mqtt(aws_quotas, pki, device, "dev-2", v5=True) as client:
        for batch in batches:
            await client.subscribe([(f, 1) for f in batch])
        granted = await client.subscribe([(filters[50], 1)])
        assert isinstance(granted, list)
        # AWS lists 0x97 "Quota exceeded"; mosquitto 2.0 lets a plugin refuse only as 0x87.
        assert [code.value for code in granted] == [0x87]


async def test_publishes_beyond_100_per_second_are_discarded(
    aws_quotas: MosquittoBroker, pki: Pki, device_factory: DeviceFactory
) -> None:
    device = device_factory("dev-1")
    aws_quotas.set_principals([device.principal()])
    async with plain(aws_quotas) as observer, mqtt(aws_quotas, pki, device, "dev-1") as client:
        await observer.subscribe("things/dev-1/rate", qos=1)
        started = time.monotonic()
        for i in range(200):
            # MQTT 3.1.1 cannot refuse a PUBLISH: every one is acknowledged.
            await client.publish("things/dev-1/rate", str(i).encode(), qos=1)
        elapsed = time.monotonic() - started
        # Discarded, not disconnected: the next second's publishes get through.
        await asyncio.sleep(1.0)
        await client.publish("things/dev-1/rate", b"-1", qos=1)
        received: list[int] = []
        while (message := await next_message(observer)).payload != b"-1":
            assert isinstance(message.payload, bytes)
            received.append(int(message.payload))
        # A burst of 100, then 100 per second.
        assert received[:100] == list(range(100))
        assert len(received) <= 100 + int(elapsed * 100) + 1
        assert len(received) < 200
