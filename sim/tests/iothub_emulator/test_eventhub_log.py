"""The endpoint's parts without a socket: storage, selectors, addresses, tokens, nodes, owners."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from azure.eventhub._pyamqp.utils import generate_sas_token

from bridge_sim.errors import SimulatorError
from bridge_sim.iothub.eventhub import AmqpEndpoint, EventLog, codec, nodes
from bridge_sim.iothub.eventhub.addressing import parse_address, starting_sequence
from bridge_sim.iothub.eventhub.auth import TokenError, verify_service_bus_token
from bridge_sim.iothub.eventhub.errors import LinkRefused
from bridge_sim.iothub.eventhub.ownership import LINK_STOLEN, Claim, OwnershipRegistry

KEY = base64.b64encode(b"k" * 32).decode()


def device_in(log: EventLog, partition: int) -> str:
    return next(f"d-{n}" for n in range(1000) if log.partition_for(f"d-{n}") == partition)


def test_partitioning_is_stable_and_spreads_devices() -> None:
    log, other = EventLog(), EventLog()
    chosen = {log.partition_for(f"device-{n}") for n in range(100)}
    assert chosen == {0, 1, 2, 3}
    assert all(
        log.partition_for(f"device-{n}") == other.partition_for(f"device-{n}") for n in range(100)
    )
    assert EventLog(partition_count=2).partition_for("device-1") in {0, 1}


def test_append_numbers_and_offsets_per_partition() -> None:
    log = EventLog()
    device = device_in(log, 1)
    first = log.append(body=b"12345", device_id=device, properties={"k": "v"}, message_id="m")
    second = log.append(body=b"abc", device_id=device)
    third = log.append(body=b"", device_id=device_in(log, 2))
    assert (first.partition, first.sequence_number, first.offset) == (1, 0, 0)
    assert (second.sequence_number, second.offset) == (1, 5)
    assert (third.partition, third.sequence_number) == (2, 0)
    assert second.enqueued_time_ms >= first.enqueued_time_ms
    assert first.properties == {"k": "v"}
    assert log.read(1, 0, 10) == [first, second]
    assert log.read(1, 1, 10) == [second]
    assert log.read(1, 0, 1) == [first]
    assert log.read(0, 0, 10) == []
    with pytest.raises(IndexError):
        log.read(4, 0, 1)


def test_partition_info() -> None:
    log = EventLog()
    assert log.partition_info(0).is_empty
    assert log.partition_info(0).last_enqueued_sequence_number == -1
    device = device_in(log, 0)
    log.append(body=b"xx", device_id=device)
    last = log.append(body=b"yyy", device_id=device)
    info = log.partition_info(0)
    assert not info.is_empty
    assert info.last_enqueued_sequence_number == 1
    assert info.last_enqueued_offset == "2"
    assert info.last_enqueued_time_ms == last.enqueued_time_ms


def test_retention_drops_the_oldest() -> None:
    log = EventLog(max_events_per_partition=10)
    device = device_in(log, 3)
    for n in range(25):
        log.append(body=str(n).encode(), device_id=device)
    retained = log.read(3, 0, 100)
    assert 10 <= len(retained) <= 11
    assert retained[-1].sequence_number == 24
    assert log.begin_sequence_number(3) == retained[0].sequence_number
    assert log.partition_info(3).begin_sequence_number == retained[0].sequence_number
    assert log.next_sequence_number(3) == 25


def test_invalid_log_arguments() -> None:
    with pytest.raises(ValueError, match="partition_count"):
        EventLog(partition_count=0)
    with pytest.raises(ValueError, match="max_events"):
        EventLog(max_events_per_partition=0)


async def test_readers_wait_without_polling() -> None:
    log = EventLog()
    device = device_in(log, 2)
    waiter = asyncio.create_task(log.wait_for(2, 0))
    await asyncio.sleep(0.01)
    assert not waiter.done()
    log.append(body=b"x", device_id=device_in(log, 1))
    await asyncio.sleep(0.01)
    assert not waiter.done()
    log.append(body=b"x", device_id=device)
    await asyncio.wait_for(waiter, 1)
    await asyncio.wait_for(log.wait_for(2, 0), 1)  # already there: returns at once


def test_connection_state_events() -> None:
    log = EventLog(hub_name="myhub")
    connected = log.append_connection_state("dev-1", None, connected=True)
    disconnected = log.append_connection_state("dev-1", "mod", connected=False)
    assert connected.message_source == "deviceConnectionStateEvents"
    assert connected.properties["opType"] == "deviceConnected"
    assert connected.properties["hubName"] == "myhub"
    assert "moduleId" not in connected.properties
    assert disconnected.properties["opType"] == "deviceDisconnected"
    assert disconnected.properties["moduleId"] == "mod"
    assert disconnected.module_id == "mod"
    first = json.loads(connected.body)["sequenceNumber"]
    second = json.loads(disconnected.body)["sequenceNumber"]
    assert len(first) == 64
    assert second > first


def test_offsets_and_times_map_to_sequence_numbers() -> None:
    log = EventLog()
    device = device_in(log, 0)
    events = [log.append(body=b"abcd", device_id=device) for _ in range(4)]
    assert [e.offset for e in events] == [0, 4, 8, 12]
    assert log.first_sequence_after_offset(0, 4, inclusive=False) == 2
    assert log.first_sequence_after_offset(0, 4, inclusive=True) == 1
    assert log.first_sequence_after_offset(0, 12, inclusive=False) == 4
    assert log.first_sequence_after_time(0, events[0].enqueued_time_ms - 1, inclusive=False) == 0
    assert log.first_sequence_after_time(0, events[-1].enqueued_time_ms, inclusive=False) == 4
    assert log.first_sequence_after_time(0, events[0].enqueued_time_ms, inclusive=True) == 0


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        (None, 0),
        ("amqp.annotation.x-opt-offset > '-1'", 0),
        ("amqp.annotation.x-opt-offset > '3'", 2),
        ("amqp.annotation.x-opt-offset >= '3'", 1),
        ("amqp.annotation.x-opt-offset >= '6'", 2),
        ("amqp.annotation.x-opt-offset > '@latest'", 3),
        ("amqp.annotation.x-opt-sequence-number > '1'", 2),
        ("amqp.annotation.x-opt-sequence-number >= '1'", 1),
        ("amqp.annotation.x-opt-enqueued-time > '0'", 0),
        ("amqp.annotation.x-opt-enqueued-time > '99999999999999'", 3),
    ],
)
def test_starting_sequence(selector: str | None, expected: int) -> None:
    log = EventLog()
    device = device_in(log, 0)
    for _ in range(3):
        log.append(body=b"abc", device_id=device)
    assert starting_sequence(selector, log, 0) == expected


@pytest.mark.parametrize(
    "selector",
    [
        "amqp.annotation.x-opt-foo > '1'",
        "x-opt-offset = '1'",
        "amqp.annotation.x-opt-offset > 'abc'",
    ],
)
def test_bad_selectors(selector: str) -> None:
    with pytest.raises(LinkRefused) as error:
        starting_sequence(selector, EventLog(), 0)
    assert error.value.condition == b"amqp:invalid-field"


def test_parse_address() -> None:
    groups = {"$Default", "Analytics"}
    where = parse_address(
        "amqps://127.0.0.1:5671/myhub/ConsumerGroups/analytics/Partitions/3",
        hub_name="MyHub",
        consumer_groups=groups,
        partition_count=4,
    )
    assert (where.consumer_group, where.partition) == ("Analytics", 3)
    plain = parse_address(
        "myhub/consumergroups/$Default/partitions/0",
        hub_name="myhub",
        consumer_groups=groups,
        partition_count=4,
    )
    assert plain.partition == 0


@pytest.mark.parametrize(
    ("address", "condition"),
    [
        ("other/ConsumerGroups/$Default/Partitions/0", b"amqp:not-found"),
        ("myhub/ConsumerGroups/nope/Partitions/0", b"amqp:not-found"),
        ("myhub/ConsumerGroups/$Default/Partitions/4", b"com.microsoft:argument-out-of-range"),
        ("myhub/ConsumerGroups/$Default/Partitions/x", b"com.microsoft:argument-out-of-range"),
        ("myhub/Partitions/0", b"amqp:not-found"),
    ],
)
def test_refused_addresses(address: str, condition: bytes) -> None:
    with pytest.raises(LinkRefused) as error:
        parse_address(address, hub_name="myhub", consumer_groups={"$Default"}, partition_count=4)
    assert error.value.condition == condition


def _token(
    resource: str, key: str = KEY, policy: str = "service", expiry: int | None = None
) -> str:
    return str(generate_sas_token(resource, policy, key, expiry or int(time.time()) + 60))


def test_sdk_tokens_verify() -> None:
    keys = {"service": KEY}
    token = _token("sb://iothub-ns-myhub.servicebus.windows.net/myhub")
    assert verify_service_bus_token(token, entity="myhub", keys=keys) == "service"
    partition_scope = _token("sb://127.0.0.1:5673/myhub/ConsumerGroups/$Default/Partitions/0")
    assert verify_service_bus_token(partition_scope, entity="MYHUB", keys=keys) == "service"


@pytest.mark.parametrize(
    ("make_token", "reason"),
    [
        # Tokens are made when the test runs: made at collection, they could expire first.
        (lambda: _token("sb://ns/myhub", key=base64.b64encode(b"x" * 32).decode()), "signature"),
        (lambda: _token("sb://ns/myhub", policy="other"), "unknown shared access policy"),
        (lambda: _token("sb://ns/otherhub"), "entity"),
        (lambda: _token("sb://ns/myhub", expiry=int(time.time()) - 1), "expired"),
        (lambda: "Bearer abc", "not a SharedAccessSignature"),
        (lambda: "SharedAccessSignature sr=x&se=1", "missing"),
    ],
)
def test_bad_tokens(make_token: Callable[[], str], reason: str) -> None:
    token = make_token()
    with pytest.raises(TokenError, match=reason):
        verify_service_bus_token(token, entity="myhub", keys={"service": KEY})


async def test_endpoint_arguments_and_lifecycle() -> None:
    log = EventLog()
    with pytest.raises(ValueError, match="hub name"):
        AmqpEndpoint(log=log, hub_name="a/b", namespace="ns", shared_access_keys={"s": KEY})
    with pytest.raises(ValueError, match="shared access key"):
        AmqpEndpoint(log=log, hub_name="h", namespace="ns", shared_access_keys={})
    endpoint = AmqpEndpoint(log=log, hub_name="h", namespace="ns", shared_access_keys={"s": KEY})
    with pytest.raises(SimulatorError):
        _ = endpoint.port
    async with endpoint:
        assert endpoint.port > 0
        assert endpoint.connection_string("s", emulator_style=False) == (
            f"Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=s;SharedAccessKey={KEY};"
            "EntityPath=h"
        )
        assert endpoint.connection_string("s", emulator_style=True).endswith(
            f"sb://127.0.0.1:{endpoint.port}/;SharedAccessKeyName=s;SharedAccessKey={KEY};"
            "EntityPath=h;UseDevelopmentEmulator=true"
        )
        with pytest.raises(SimulatorError, match="no shared access policy"):
            endpoint.connection_string("nope", emulator_style=True)
        busy = AmqpEndpoint(
            log=log, hub_name="h", namespace="ns", port=endpoint.port, shared_access_keys={"s": KEY}
        )
        with pytest.raises(SimulatorError, match="cannot listen"):
            await busy.__aenter__()
    with pytest.raises(SimulatorError):
        _ = endpoint.port


def test_owner_levels() -> None:
    registry = OwnershipRegistry()
    evicted: list[str] = []

    def claim(level: int | None, name: str, partition: int = 0) -> Claim:
        return Claim("$Default", partition, level, evict=lambda _: evicted.append(name))

    plain_a, plain_b = claim(None, "a"), claim(None, "b")
    registry.claim(plain_a)
    registry.claim(plain_b)
    assert evicted == []
    registry.claim(claim(None, "other partition", partition=1))
    level_one = claim(1, "one")
    registry.claim(level_one)
    assert evicted == ["a", "b"]
    for refused in (claim(None, "late"), claim(0, "lower")):
        with pytest.raises(LinkRefused) as error:
            registry.claim(refused)
        assert error.value.condition == LINK_STOLEN
    registry.claim(claim(1, "same level"))
    assert evicted == ["a", "b", "one"]
    registry.release(level_one)  # already evicted: nothing to do
    registry.claim(claim(5, "five"))
    assert evicted[-1] == "same level"


def _request(**properties: str) -> Any:
    return codec.Message(
        properties=codec.Properties(message_id="req-1"),
        application_properties={key.encode(): value.encode() for key, value in properties.items()},
        value=b"",
    )


@pytest.mark.parametrize(
    ("properties", "authorized", "status"),
    [
        ({"operation": "READ", "name": "myhub", "type": "com.microsoft:eventhub"}, False, 401),
        ({"operation": "READ", "name": "myhub", "type": "com.microsoft:eventhub"}, True, 200),
        ({"operation": "READ", "name": "other", "type": "com.microsoft:eventhub"}, True, 404),
        ({"operation": "READ", "name": "myhub", "type": "com.microsoft:queue"}, True, 400),
        ({"operation": "CREATE", "name": "myhub", "type": "com.microsoft:eventhub"}, True, 400),
        (
            {
                "operation": "READ",
                "name": "myhub",
                "type": "com.microsoft:partition",
                "partition": "4",
            },
            True,
            404,
        ),
    ],
)
def test_management_statuses(properties: dict[str, str], authorized: bool, status: int) -> None:
    reply = nodes.management_reply(
        _request(**properties), log=EventLog(), hub_name="myhub", authorized=authorized
    )
    decoded = codec.decode_message(codec.encode_message(reply))
    assert decoded.application_properties[b"status-code"] == status
    assert decoded.properties.correlation_id == b"req-1"


def test_cbs_answers_only_put_token() -> None:
    reply, accepted = nodes.cbs_reply(
        _request(operation="delete-token"), hub_name="myhub", shared_access_keys={"s": KEY}
    )
    assert not accepted
    assert (
        codec.decode_message(codec.encode_message(reply)).application_properties[b"status-code"]
        == 400
    )
