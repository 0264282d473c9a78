"""Raw MQTT against the endpoint: what the SDK never sends, and the limits IoT Hub enforces.

Every misbehaving connection must be closed alone; a well-behaved device keeps working.
"""

from __future__ import annotations

import asyncio
import ssl
import struct
import time

import pytest

from bridge_sim.iothub.faults import FaultRule
from bridge_sim.iothub.mqtt import codec
from bridge_sim.iothub.mqtt.harness import emulated_hub
from bridge_sim.iothub.quotas import Operation, Quotas, Rate
from bridge_sim.iothub.sas import generate_token
from iothub_emulator.test_device_harness import (
    STEP,
    connected,
    device_client,
    events_of,
    eventually,
)

TELEMETRY = "devices/d1/messages/events/"


def mqtt_string(text):
    raw = text.encode()
    return struct.pack("!H", len(raw)) + raw


def packet(kind, flags, body):
    length, encoded = len(body), bytearray()
    while True:
        byte, length = length % 128, length // 128
        encoded.append(byte | (0x80 if length else 0))
        if not length:
            break
    return bytes([kind << 4 | flags]) + bytes(encoded) + body


def connect_packet(client_id, username, password=None, keepalive=60, level=4):
    flags = 0x80 | (0x40 if password is not None else 0)
    body = mqtt_string("MQTT") + bytes([level, flags]) + struct.pack("!H", keepalive)
    body += mqtt_string(client_id) + mqtt_string(username)
    if password is not None:
        body += mqtt_string(password)
    return packet(codec.PacketType.CONNECT, 0, body)


def subscribe_packet(packet_id, *filters):
    body = struct.pack("!H", packet_id)
    for topic_filter, qos in filters:
        body += mqtt_string(topic_filter) + bytes([qos])
    return packet(codec.PacketType.SUBSCRIBE, 2, body)


class RawDevice:
    """A hand-driven MQTT client over TLS; `read` returns None once the server closed."""

    def __init__(self, reader, writer):
        self.reader, self.writer = reader, writer
        self.decoder = codec.PacketDecoder()
        self.pending = []

    @classmethod
    async def open(cls, hub):
        context = ssl.create_default_context(cadata=hub.ca_pem)
        reader, writer = await asyncio.open_connection(hub.host, 8883, ssl=context)
        return cls(reader, writer)

    def send(self, data):
        self.writer.write(data)

    async def read(self, timeout=STEP):
        while not self.pending:
            try:
                data = await asyncio.wait_for(self.reader.read(65536), timeout)
            except (ConnectionError, ssl.SSLError):
                return None
            if not data:
                return None
            self.pending += self.decoder.feed(data)
        return self.pending.pop(0)

    async def closed_by_server(self, timeout=STEP):
        while (received := await self.read(timeout)) is not None:
            assert received.type is not codec.PacketType.CONNACK
        return True

    def close(self):
        self.writer.transport.abort()


@pytest.fixture
async def hub():
    async with emulated_hub() as running:
        running.add_sas_device("d1")
        running.add_sas_device("bystander")
        yield running


@pytest.fixture
async def raw(hub):
    devices = []

    async def open_device(device_id="d1", *, connack=0, **connect_options):
        device = await RawDevice.open(hub)
        devices.append(device)
        token = generate_token(hub.registry.device_resource(device_id), hub.keys[device_id])
        connect_options.setdefault("password", token)
        username = f"{hub.registry.host_name}/{device_id}/?api-version=2021-04-12"
        device.send(
            connect_packet(connect_options.pop("client_id", device_id), username, **connect_options)
        )
        answer = await device.read()
        assert answer is not None
        assert answer.type is codec.PacketType.CONNACK
        assert answer.body[1] == connack
        return device

    yield open_device
    for device in devices:
        device.close()


async def assert_bystander_works(hub):
    async with connected(device_client(hub, "bystander")) as client:
        await asyncio.wait_for(client.send_message("unaffected"), STEP)
    assert events_of(hub, "bystander", "Telemetry")


def publish(topic, payload=b"x", *, qos=1, packet_id=1, retain=False):
    encoded = codec.encode_publish(topic, payload, qos=qos, packet_id=packet_id)
    return bytes([encoded[0] | int(retain)]) + encoded[1:]


async def test_raw_qos1_telemetry_is_acknowledged(hub, raw):
    device = await raw()
    device.send(publish(TELEMETRY + "%24.mid=r1&k=v", b"raw", packet_id=7))
    ack = await device.read()
    assert (ack.type, codec.parse_packet_id(ack.body)) == (codec.PacketType.PUBACK, 7)
    [event] = events_of(hub, "d1", "Telemetry")
    assert (event.body, event.message_id, event.properties) == (b"raw", "r1", {"k": "v"})


@pytest.mark.parametrize(
    "garbage",
    [
        pytest.param(b"\xf0\x00", id="reserved-type"),
        pytest.param(b"\x30\xff\xff\xff\xff\x7f", id="remaining-length-5-bytes"),
        pytest.param(b"\x82\x03\x00\x01\x00", id="subscribe-truncated"),
        pytest.param(publish("$iothub/anything/else"), id="topic-not-allowed"),
        pytest.param(publish("devices/bystander/messages/events/"), id="other-device-topic"),
        pytest.param(publish(TELEMETRY, qos=2), id="qos2-publish"),
        pytest.param(publish(TELEMETRY, b"x" * (256 * 1024 + 1)), id="over-256kb"),
        pytest.param(connect_packet("d1", "myhub.azure-devices.net/d1/"), id="second-connect"),
    ],
)
async def test_misbehaviour_closes_only_that_connection(hub, raw, garbage):
    device = await raw()
    device.send(garbage)
    assert await device.closed_by_server()
    assert not events_of(hub, "d1", "Telemetry")
    await eventually(lambda: hub.registry.identity("d1").connection_state == "Disconnected")
    await assert_bystander_works(hub)


async def test_message_at_the_size_limit_is_accepted(hub, raw):
    device = await raw()
    device.send(publish(TELEMETRY, b"x" * (256 * 1024 - len(TELEMETRY))))
    assert (await device.read()).type is codec.PacketType.PUBACK


async def test_garbage_before_connect_is_dropped(hub):
    device = await RawDevice.open(hub)
    try:
        device.send(b"\x10\xff\xff\xff\xff\x01")
        assert await device.closed_by_server()
    finally:
        device.close()
    await assert_bystander_works(hub)


@pytest.mark.parametrize(
    ("options", "code"),
    [
        ({"level": 3}, 1),
        ({"client_id": "someone-else"}, 2),
        ({"password": "SharedAccessSignature sr=x&sig=y&se=1"}, 4),
        ({"password": None}, 5),
    ],
)
async def test_connect_refusals_use_iot_hub_return_codes(raw, options, code):
    device = await raw(connack=code, **options)
    assert await device.closed_by_server()


async def test_retained_publish_is_forwarded_with_mqtt_retain(hub, raw):
    device = await raw()
    device.send(publish(TELEMETRY, b"kept", retain=True))
    assert (await device.read()).type is codec.PacketType.PUBACK
    [event] = events_of(hub, "d1", "Telemetry")
    assert event.properties == {"mqtt-retain": "true"}


async def test_subscribe_grants_qos1_and_refuses_unknown_filters(raw):
    device = await raw()
    device.send(
        subscribe_packet(
            3,
            ("$iothub/twin/res/#", 2),
            ("devices/d1/messages/devicebound/#", 0),
            ("devices/bystander/messages/devicebound/#", 1),
            ("#", 1),
        )
    )
    suback = await device.read()
    assert suback.type is codec.PacketType.SUBACK
    assert suback.body == b"\x00\x03" + bytes([1, 0, 0x80, 0x80])
    device.send(packet(codec.PacketType.PINGREQ, 0, b""))
    assert (await device.read()).type is codec.PacketType.PINGRESP


async def test_silence_beyond_one_and_a_half_keepalives_closes(hub, raw):
    device = await raw(keepalive=1)
    started = time.monotonic()
    assert await device.closed_by_server(timeout=5)
    assert 1.4 <= time.monotonic() - started < 4


async def test_faults_refuse_then_allow_connections(hub, raw):
    hub.endpoint.faults.add(FaultRule(status=503, endpoint="mqtt", route_prefix="connect", count=1))
    await raw(connack=3)
    device = await raw()
    assert hub.endpoint.drop("d1")
    assert await device.closed_by_server()
    assert not hub.endpoint.drop("d1")


async def test_fault_latency_delays_and_drop_all_cuts_everyone(hub, raw):
    device, other = await raw(), await raw("bystander")
    hub.endpoint.faults.latency, hub.endpoint.faults.latency_endpoint = 0.3, "mqtt"
    started = time.monotonic()
    device.send(publish(TELEMETRY))
    assert (await device.read()).type is codec.PacketType.PUBACK
    assert time.monotonic() - started >= 0.3
    assert hub.endpoint.drop_all() == 2
    assert await device.closed_by_server()
    assert await other.closed_by_server()


async def test_d2c_throttle_delays_pubacks():
    quotas = Quotas("S1", overrides={Operation.D2C_SEND: Rate(5, 1.0)})
    async with emulated_hub(quotas=quotas) as hub:
        hub.add_sas_device("d1")
        device = await RawDevice.open(hub)
        try:
            token = generate_token(hub.registry.device_resource("d1"), hub.keys["d1"])
            device.send(connect_packet("d1", "myhub.azure-devices.net/d1/", token))
            assert (await device.read()).type is codec.PacketType.CONNACK
            started = time.monotonic()
            for packet_id in range(1, 11):
                device.send(publish(TELEMETRY, packet_id=packet_id))
            acks = [await device.read() for _ in range(10)]
            elapsed = time.monotonic() - started
        finally:
            device.close()
    assert all(ack.type is codec.PacketType.PUBACK for ack in acks)
    # Five go through at once (one window's burst), the other five at five per second.
    assert 0.7 <= elapsed < 5


async def test_connection_closes_when_its_sas_token_expires(hub, raw):
    token = generate_token(hub.registry.device_resource("d1"), hub.keys["d1"], ttl=2)
    device = await raw(password=token)
    device.send(publish(TELEMETRY))
    assert (await device.read()).type is codec.PacketType.PUBACK
    started = time.monotonic()
    assert await device.closed_by_server(timeout=5)
    assert time.monotonic() - started < 3


async def test_replies_and_pushes_follow_subscriptions(hub, raw):
    device = await raw()
    ping = packet(codec.PacketType.PINGREQ, 0, b"")
    device.send(publish("$iothub/twin/GET/?$rid=1", b" ") + ping)
    assert (await device.read()).type is codec.PacketType.PUBACK
    # Not subscribed to the response topic: IoT Hub's answer goes nowhere.
    assert (await device.read()).type is codec.PacketType.PINGRESP
    device.send(
        subscribe_packet(
            1, ("$iothub/twin/res/#", 1), ("$iothub/twin/PATCH/properties/desired/#", 1)
        )
    )
    assert (await device.read()).type is codec.PacketType.SUBACK
    device.send(publish("$iothub/twin/GET/?$rid=2", b" ", packet_id=2))
    assert (await device.read()).type is codec.PacketType.PUBACK
    reply = await device.read()
    answer = codec.parse_publish(reply.flags, reply.body)
    assert answer.topic == "$iothub/twin/res/200/?$rid=2"
    hub.registry.update_twin("d1", {"properties": {"desired": {"a": 1}}}, None)
    pushed = await device.read()
    assert codec.parse_publish(pushed.flags, pushed.body).topic.endswith("?$version=2")
    unsubscribe = struct.pack("!H", 5) + mqtt_string("$iothub/twin/PATCH/properties/desired/#")
    device.send(packet(codec.PacketType.UNSUBSCRIBE, 2, unsubscribe))
    assert (await device.read()).body == b"\x00\x05"
    hub.registry.update_twin("d1", {"properties": {"desired": {"a": 2}}}, None)
    device.send(ping)
    assert (await device.read()).type is codec.PacketType.PINGRESP


async def test_telemetry_fault_drops_the_sender(hub, raw):
    hub.endpoint.faults.add(
        FaultRule(status=503, endpoint="mqtt", route_prefix="telemetry", count=1)
    )
    device = await raw()
    device.send(publish(TELEMETRY))
    assert await device.closed_by_server()
    device = await raw()
    device.send(publish(TELEMETRY))
    assert (await device.read()).type is codec.PacketType.PUBACK
    assert len(events_of(hub, "d1", "Telemetry")) == 1
