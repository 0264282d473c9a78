"""Frame-level behaviour the SDK does not show: credit, frame splitting, SASL PLAIN, heartbeats."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import struct
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bridge_sim.iothub.eventhub import AmqpEndpoint, EventLog, codec, wire
from bridge_sim.iothub.eventhub.events import event_message

KEY = base64.b64encode(b"wire-test-key-0123456789abcdefgh").decode()
TIMEOUT = 5
_ATTACH, _FLOW, _TRANSFER, _DETACH = 0x12, 0x13, 0x14, 0x16


class RawClient:
    """Just enough of an AMQP client to drive the endpoint frame by frame."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.empty_frames = 0

    def send(self, performative: Any, *, frame_type: int = 0) -> None:
        self.writer.write(codec.encode_frame(0, performative, frame_type=frame_type))

    async def frame(self) -> tuple[int, list[Any]]:
        """The next non-empty frame's performative code and fields."""
        while True:
            header = await asyncio.wait_for(self.reader.readexactly(8), TIMEOUT)
            size = struct.unpack(">I", header[:4])[0]
            body = await self.reader.readexactly(size - 8)
            if body:
                return codec.decode_frame_body(body)
            self.empty_frames += 1

    async def handshake(
        self, password: str | None, *, max_frame_size: int, idle_ms: int | None
    ) -> None:
        """SASL (PLAIN with `password`, ANONYMOUS without), OPEN and BEGIN."""
        self.writer.write(codec.SASL_HEADER)
        assert await self.reader.readexactly(8) == codec.SASL_HEADER
        _, mechanisms = await self.frame()
        assert b"PLAIN" in mechanisms[0]
        plain = password is not None
        self.send(
            codec.SaslInit(
                mechanism=b"PLAIN" if plain else b"ANONYMOUS",
                initial_response=f"\0service\0{password}".encode() if plain else b"",
                hostname=None,
            ),
            frame_type=1,
        )
        _, outcome = await self.frame()
        if outcome[0] != 0:
            raise PermissionError("SASL refused")
        self.writer.write(codec.AMQP_HEADER)
        assert await self.reader.readexactly(8) == codec.AMQP_HEADER
        self.send(
            codec.OpenFrame(
                container_id="raw",
                hostname=None,
                max_frame_size=max_frame_size,
                channel_max=8,
                idle_timeout=idle_ms,
                outgoing_locales=None,
                incoming_locales=None,
                offered_capabilities=None,
                desired_capabilities=None,
                properties=None,
            )
        )
        code, _ = await self.frame()
        assert code == 0x10
        self.send(
            codec.BeginFrame(
                remote_channel=None,
                next_outgoing_id=0,
                incoming_window=10_000,
                outgoing_window=10_000,
                handle_max=10,
                offered_capabilities=None,
                desired_capabilities=None,
                properties=None,
            )
        )
        code, _ = await self.frame()
        assert code == 0x11

    def attach_receiver(self, address: str, handle: int = 0) -> None:
        self.send(
            codec.AttachFrame(
                name=f"receiver-{handle}",
                handle=handle,
                role=True,
                send_settle_mode=None,
                rcv_settle_mode=None,
                source=codec.Source(
                    address=address,
                    filters={
                        b"apache.org:selector-filter:string": (
                            b"apache.org:selector-filter:string",
                            "amqp.annotation.x-opt-offset > '-1'",
                        )
                    },
                ),
                target=codec.Target(address="raw-target"),
                unsettled=None,
                incomplete_unsettled=None,
                initial_delivery_count=None,
                max_message_size=None,
                offered_capabilities=None,
                desired_capabilities=None,
                properties=None,
            )
        )

    def flow(
        self, *, delivery_count: int, credit: int, next_incoming_id: int, drain: bool = False
    ) -> None:
        self.send(
            codec.FlowFrame(
                next_incoming_id=next_incoming_id,
                incoming_window=10_000,
                next_outgoing_id=0,
                outgoing_window=10_000,
                handle=0,
                delivery_count=delivery_count,
                link_credit=credit,
                available=None,
                drain=drain,
                echo=None,
                properties=None,
            )
        )

    async def message(self) -> tuple[Any, int]:
        """The next delivered message, reassembled, and how many frames carried it."""
        payload, frames = bytearray(), 0
        while True:
            code, fields = await self.frame()
            assert code == _TRANSFER
            frames += 1
            payload.extend(fields[-1])
            if not fields[5]:  # more
                return codec.decode_message(bytes(payload)), frames


@pytest.fixture
async def endpoint() -> AsyncIterator[AmqpEndpoint]:
    log = EventLog(hub_name="myhub")
    async with AmqpEndpoint(
        log=log, hub_name="myhub", namespace="ns", shared_access_keys={"service": KEY}
    ) as running:
        yield running


@contextlib.asynccontextmanager
async def raw_client(endpoint: AmqpEndpoint) -> AsyncIterator[RawClient]:
    reader, writer = await asyncio.open_connection("127.0.0.1", endpoint.port)
    try:
        yield RawClient(reader, writer)
    finally:
        writer.close()


def device_in(log: EventLog, partition: int) -> str:
    return next(f"d-{n}" for n in range(1000) if log.partition_for(f"d-{n}") == partition)


async def test_sends_only_what_credit_allows(endpoint: AmqpEndpoint) -> None:
    log = endpoint.context.log
    device = device_in(log, 0)
    for n in range(5):
        log.append(body=f"event {n}".encode(), device_id=device)
    async with raw_client(endpoint) as client:
        await client.handshake(KEY, max_frame_size=65536, idle_ms=None)
        client.attach_receiver("myhub/ConsumerGroups/$Default/Partitions/0")
        code, attach = await client.frame()
        assert code == _ATTACH
        assert len(attach) == 14  # every field present, trailing nulls included
        assert attach[9] == 0  # initial-delivery-count, which the SDK requires
        client.flow(delivery_count=0, credit=2, next_incoming_id=0)
        first, _ = await client.message()
        second, _ = await client.message()
        assert [first.data, second.data] == [[b"event 0"], [b"event 1"]]
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(client.frame(), 0.3)
        client.flow(delivery_count=2, credit=1, next_incoming_id=2)
        third, _ = await client.message()
        assert third.message_annotations[b"x-opt-sequence-number"] == 2
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(client.frame(), 0.3)


async def test_splits_messages_larger_than_the_client_frame_size(endpoint: AmqpEndpoint) -> None:
    log = endpoint.context.log
    body = bytes(range(256)) * 12
    log.append(body=body, device_id=device_in(log, 1))
    async with raw_client(endpoint) as client:
        await client.handshake(KEY, max_frame_size=512, idle_ms=None)
        client.attach_receiver("myhub/ConsumerGroups/$Default/Partitions/1")
        await client.frame()
        client.flow(delivery_count=0, credit=10, next_incoming_id=0)
        message, frames = await client.message()
    assert message.data == [body]
    assert frames >= len(body) // 512


async def test_sasl_plain_checks_the_key(endpoint: AmqpEndpoint) -> None:
    async with raw_client(endpoint) as client:
        with pytest.raises(PermissionError):
            await client.handshake("wrong", max_frame_size=65536, idle_ms=None)


async def test_heartbeats_within_the_client_idle_timeout(endpoint: AmqpEndpoint) -> None:
    async with raw_client(endpoint) as client:
        await client.handshake(KEY, max_frame_size=65536, idle_ms=200)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(client.frame(), 0.5)
        assert client.empty_frames >= 2


async def test_unknown_link_is_attached_then_detached_with_an_error(endpoint: AmqpEndpoint) -> None:
    async with raw_client(endpoint) as client:
        await client.handshake(KEY, max_frame_size=65536, idle_ms=None)
        client.attach_receiver("myhub/ConsumerGroups/nobody/Partitions/0")
        code, _ = await client.frame()
        assert code == _ATTACH
        code, detach = await client.frame()
    assert code == _DETACH
    assert detach[1] is True
    assert detach[2][0] == b"amqp:not-found"


async def test_shutdown_closes_live_connections() -> None:
    log = EventLog(hub_name="myhub")
    endpoint = AmqpEndpoint(
        log=log, hub_name="myhub", namespace="ns", shared_access_keys={"service": KEY}
    )
    async with endpoint, raw_client(endpoint) as client:
        await client.handshake(KEY, max_frame_size=65536, idle_ms=None)
        client.attach_receiver("myhub/ConsumerGroups/$Default/Partitions/0")
        await client.frame()
        client.flow(delivery_count=0, credit=10, next_incoming_id=0)
        await asyncio.wait_for(endpoint.__aexit__(None, None, None), TIMEOUT)
        code, close = await client.frame()
        assert code == 0x18
        assert close[0][0] == b"amqp:connection:forced"
        assert await client.reader.read() == b""


async def test_receivers_need_a_token_first(endpoint: AmqpEndpoint) -> None:
    async with raw_client(endpoint) as client:
        await client.handshake(None, max_frame_size=65536, idle_ms=None)
        client.attach_receiver("myhub/ConsumerGroups/$Default/Partitions/0")
        code, _ = await client.frame()
        assert code == _ATTACH
        code, detach = await client.frame()
    assert code == _DETACH
    assert detach[2][0] == b"amqp:unauthorized-access"


async def test_drain_uses_up_the_remaining_credit(endpoint: AmqpEndpoint) -> None:
    log = endpoint.context.log
    log.append(body=b"only one", device_id=device_in(log, 3))
    async with raw_client(endpoint) as client:
        await client.handshake(KEY, max_frame_size=65536, idle_ms=None)
        client.attach_receiver("myhub/ConsumerGroups/$Default/Partitions/3")
        await client.frame()
        client.flow(delivery_count=0, credit=5, next_incoming_id=0, drain=True)
        message, _ = await client.message()
        code, flow = await client.frame()
        assert message.data == [b"only one"]
        assert code == _FLOW
        assert (flow[5], flow[6], flow[8]) == (5, 0, True)  # delivery-count, credit, drain
        # A drain that arrives while the pump waits for events is answered at once too.
        client.flow(delivery_count=5, credit=3, next_incoming_id=1)
        await asyncio.sleep(0.05)
        client.flow(delivery_count=5, credit=3, next_incoming_id=1, drain=True)
        code, flow = await client.frame()
    assert code == _FLOW
    assert (flow[5], flow[6]) == (8, 0)


_WIRE_CASES: list[dict[str, Any]] = [
    {},
    {"message_id": "m-1", "content_type": "application/json", "content_encoding": "utf-8"},
    {"message_id": "m" * 300, "correlation_id": "c-1", "user_id": "u" * 300},
    {"content_encoding": "utf-8"},
    {"properties": {"awsTopic": "dt/dev/telemetry", "awsTopic1": "dt", "n": "7"}},
    {"properties": {f"k{n}": "v" * 40 for n in range(12)}},
    {"module_id": "aws-bridge", "extra_annotations": {"x-opt-partition-key": "pk"}},
    {"message_source": "deviceConnectionStateEvents", "properties": {"opType": "é"}},
]


@pytest.mark.parametrize("body_size", [0, 200, 255, 256, 70_000])
@pytest.mark.parametrize("case", _WIRE_CASES)
def test_hand_encoded_events_match_the_sdk_encoder(case: dict[str, Any], body_size: int) -> None:
    log = EventLog(partition_count=1)
    for _ in range(300):  # sequence numbers and offsets past the one-octet encodings
        log.append(body=b"x" * 300, device_id="other")
    event = log.append(
        body=bytes(range(256)) * (body_size // 256) + b"y" * (body_size % 256),
        device_id="dévice-1",
        **case,
    )
    payload = wire.encode_event(event)
    assert payload == codec.encode_message(event_message(event))
    for channel, handle, delivery_id in [(0, 0, 0), (1, 3, 255), (300, 256, 2**32 - 1)]:
        tag = struct.pack(">I", delivery_id)
        expected = codec.encode_frame(
            channel,
            codec.TransferFrame(
                handle=handle,
                delivery_id=delivery_id,
                delivery_tag=tag,
                message_format=0,
                settled=True,
                more=False,
                rcv_settle_mode=None,
                state=None,
                resume=None,
                aborted=None,
                batchable=None,
                payload=payload,
            ),
        )
        assert wire.transfer_frame(channel, handle, delivery_id, tag, payload) == expected


@pytest.mark.parametrize(
    "annotations", [{"x-opt-partition-key": 7}, {"x-opt-offset": "overridden in place"}]
)
def test_unusual_annotations_take_the_general_encoder(annotations: dict[str, Any]) -> None:
    event = EventLog().append(body=b"{}", device_id="d-1", extra_annotations=annotations)
    assert wire.encode_event(event) is None
