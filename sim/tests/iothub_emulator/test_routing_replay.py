"""The plan's routes replayed through the emulator: each message lands where AWS sent it.

Realistic topic rules go through the planner (`build_plan`, `write_plan`) into
`landing-zone.auto.tfvars.json`; the emulator loads it through its control API; the relay's
own message builder and AMQP sender (`build_message`, `AmqpModuleSender`, as each device's
`aws-bridge` module) publish messages; Microsoft's `EventHubConsumerClient` reads `events`
and each custom Event Hub by its name, the blob SDK reads the storage container from
Azurite. AWS's verdict comes from `bridge_sim.aws_rules`: the topic filter and the WHERE
clause on the payload, never the translated route.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import requests
from azure.eventhub.aio import EventHubConsumerClient
from azure.storage.blob.aio import BlobServiceClient

from bridge.azure import IotHubService, RateBudget
from bridge.azure.amqp_telemetry import AmqpModuleSender
from bridge.azure.models import DeviceIdentity
from bridge.inventory.models import Inventory, TopicRule
from bridge.plan import PlanOptions, build_plan, write_plan
from bridge.relay.message import build_message
from bridge_sim.aws_rules import AwsRule
from bridge_sim.iothub.emulator import IotHubEmulator
from bridge_sim.routes_check import check_routes

pytestmark = pytest.mark.timeout(240)
MODULE = "aws-bridge"
WAIT = 60.0

ENGINE = {"kinesis": {"streamName": "engine-stream", "partitionKey": "k", "roleArn": "r"}}
ARCHIVE = {"s3": {"bucketName": "telemetry-archive", "key": "${topic()}", "roleArn": "r"}}
ALARM_LAMBDA = {"lambda": {"functionArn": "arn:aws:lambda:eu-west-1:123:function:alarm-handler"}}
VIP_QUEUE = {"sqs": {"queueUrl": "https://sqs.eu-west-1.amazonaws.com/123/vip", "roleArn": "r"}}
REPUBLISH = {"republish": {"topic": "out/${topic(2)}", "roleArn": "r"}}
DISABLED = {"kinesis": {"streamName": "disabled-stream", "roleArn": "r"}}
RULES = [
    ("engine_hot", "SELECT * FROM 'dt/+/engine' WHERE rpm > 3000", [ENGINE], False),
    ("gateway_archive", "SELECT * FROM 'dt/#' WHERE startswith(topic(2), 'gw-')", [ARCHIVE], False),
    (
        "alarms",
        "SELECT * FROM 'alarms/+/+' WHERE topic(3) = 'fire' OR severity >= 4",
        [ALARM_LAMBDA, REPUBLISH],
        False,
    ),
    (
        "vip_status",
        "SELECT * FROM 'dt/+/status' WHERE clientid() = 'gw-7' AND NOT (state = 'ok')",
        [VIP_QUEUE, ARCHIVE],
        False,
    ),
    (
        "engine_race",
        "SELECT * FROM 'dt/+/engine' WHERE engine.temp.c > 90 AND lower(engine.mode) = 'race'",
        [ENGINE],
        False,
    ),
    ("commands", "SELECT * FROM 'cmd/#'", [REPUBLISH], False),
    ("switched_off", "SELECT * FROM 'dt/#'", [DISABLED], True),
]
RACE = {"temp": {"c": 95}, "mode": "RACE"}
# (thing, topic, payload): each one a case the rules tell apart.
MESSAGES: list[tuple[str, str, Any]] = [
    ("gw-7", "dt/gw-7/engine", {"rpm": 3500, "engine": RACE}),
    ("sensor-1", "dt/sensor-1/engine", {"rpm": 1000}),
    ("gw-8", "dt/gw-8/status", {"state": "ok"}),
    ("gw-7", "dt/gw-7/status", {"state": "degraded"}),
    ("gw-7", "dt/gw-7/status", {"status": "no state field"}),
    ("gw-8", "dt/gw-8/status", {"state": "degraded"}),
    ("sensor-1", "alarms/sensor-1/fire", {"severity": 1}),
    ("sensor-1", "alarms/sensor-1/smoke", {"severity": 5}),
    ("sensor-1", "alarms/sensor-1/smoke", {"severity": 2}),
    ("sensor-1", "alarms/sensor-1", {"severity": 5}),
    ("gw-8", "dt/gw-8/engine/extra", {"rpm": 5000}),
    ("gw-7", "cmd/gw-7/reboot", {}),
    ("gw-8", "dt/gw-8/engine", b"rpm=9000"),
    ("sensor-1", "dt/sensor-1/engine", {"rpm": 3001, "engine": {"temp": {"c": 91}, "mode": "eco"}}),
]


@pytest.fixture
async def emulator(tmp_path):
    async with IotHubEmulator(workdir=tmp_path / "hub") as running:
        yield running


def plan_files(tmp_path: Path) -> tuple[Path, Any]:
    inventory = Inventory(
        generated_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        region="eu-west-1",
        account_id="123456789012",
        rules=[
            TopicRule(name=name, sql=sql, sql_version="2016-03-23", actions=actions, disabled=off)
            for name, sql, actions, off in RULES
        ],
    )
    result = build_plan(inventory, PlanOptions(location="westeurope"))
    written = write_plan(result, tmp_path / "plan")
    [tfvars] = [path for path in written if path.name == "landing-zone.auto.tfvars.json"]
    return tfvars, result.plan


def put_routing(emulator: IotHubEmulator, body: dict[str, Any]) -> requests.Response:
    assert emulator.service is not None
    return requests.put(
        f"https://{emulator.service.host_name}/_emulator/routing",
        json=body,
        verify=str(emulator.ca_path),
        timeout=30,
    )


async def relay(emulator: IotHubEmulator) -> list[str]:
    """Send every message as the relay does; the message ids, in order."""
    env = emulator.env()
    ids = []
    async with IotHubService(
        env["IOTHUB_CONNECTION_STRING"],
        budget=RateBudget.for_hub(None, 1),
        ca_bundle=Path(env["IOTHUB_ROOT_CA"]),
    ) as hub:
        for thing in sorted({thing for thing, _, _ in MESSAGES}):
            await hub.create_or_update_device(DeviceIdentity(thing))
            await hub.create_or_update_module(thing, MODULE)
        sender = AmqpModuleSender(
            hub,
            MODULE,
            budget=RateBudget.for_hub(None, 1),
            host_name=env["IOTHUB_HOSTNAME"],
            gateway_host=env["IOTHUB_GATEWAY_HOST"],
            ca_file=Path(env["IOTHUB_ROOT_CA"]),
        )
        try:
            for n, (thing, topic, payload) in enumerate(MESSAGES):
                body = payload if isinstance(payload, bytes) else json.dumps({**payload, "n": n})
                message = build_message(thing, topic, _bytes(body), time.time())
                await sender.send(
                    thing,
                    message.body,
                    message_id=message.message_id,
                    properties=message.properties,
                    content_type=message.content_type,
                    content_encoding=message.content_encoding,
                )
                ids.append(message.message_id)
        finally:
            await sender.close()
    return ids


def _bytes(body: str | bytes) -> bytes:
    return body if isinstance(body, bytes) else body.encode()


async def read_event_hub(emulator: IotHubEmulator, eventhub_name: str | None) -> Counter[str]:
    """Message ids of everything in an event hub, read to its end with Microsoft's client."""
    connection = emulator.env()["IOTHUB_EVENTHUB_CONNECTION_STRING"]
    options: dict[str, Any] = {}
    if eventhub_name is not None:
        # A custom endpoint's hub: same namespace and keys, its own entity name.
        connection = connection.replace(f";EntityPath={emulator.hub_name}", "")
        options["eventhub_name"] = eventhub_name
    client = EventHubConsumerClient.from_connection_string(
        connection, consumer_group="$Default", **options
    )
    found: Counter[str] = Counter()
    async with client:
        remaining = {}
        for partition in await client.get_partition_ids():
            properties = await client.get_partition_properties(partition)
            if not properties["is_empty"]:
                remaining[partition] = properties["last_enqueued_sequence_number"]
        done = asyncio.Event()

        async def on_event(context: Any, event: Any) -> None:
            if event is None:
                return
            if event.system_properties.get(b"iothub-message-source") == b"Telemetry":
                found[str(event.message_id)] += 1
            if event.sequence_number >= remaining.get(context.partition_id, -1):
                remaining.pop(context.partition_id, None)
            if not remaining:
                done.set()

        if remaining:
            task = asyncio.create_task(client.receive(on_event, starting_position="-1"))
            try:
                await asyncio.wait_for(done.wait(), WAIT)
            finally:
                await client.close()
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
    return found


async def read_container(
    emulator: IotHubEmulator, container: str
) -> tuple[Counter[str], list[Any]]:
    """Message ids in a storage endpoint's blobs, and the records, read with the blob SDK."""
    assert emulator.azurite is not None
    found: Counter[str] = Counter()
    records = []
    async with BlobServiceClient.from_connection_string(
        emulator.azurite.connection_string
    ) as blobs:
        client = blobs.get_container_client(container)
        async for blob in client.list_blobs():
            data = await (await client.download_blob(blob.name)).readall()
            for line in data.decode().splitlines():
                record = json.loads(line)
                records.append((blob.name, record))
                found[record["SystemProperties"]["messageId"]] += 1
    return found, records


async def test_every_message_lands_exactly_where_the_aws_rule_sent_it(emulator, tmp_path):
    tfvars_path, plan = plan_files(tmp_path)
    tfvars = json.loads(tfvars_path.read_text())
    # The emulator serves on this loop: the blocking client runs in a thread.
    response = await asyncio.to_thread(put_routing, emulator, tfvars)
    assert response.status_code == 200, response.text
    endpoints = {e["name"]: e for e in tfvars["endpoints"]}
    assert {(e["type"], e["target"]) for e in endpoints.values()} == {
        ("EventHub", "engine-stream"),
        ("EventHub", "alarm-handler"),
        ("EventHub", "disabled-stream"),
        ("StorageContainer", "telemetry-archive"),
        ("ServiceBusQueue", "vip"),
    }
    by_rule = {rule.rule_name: rule for rule in plan.rules}
    assert all(not any("SUPERSET" in i for i in rule.issues) for rule in plan.rules)
    assert any(i.startswith("CLIENT_ID_ASSUMED") for i in by_rule["vip_status"].issues)
    assert by_rule["commands"].route_name is None  # republish: no route, events only

    ids = await relay(emulator)
    await emulator.router.flush()  # type: ignore[union-attr]

    aws = [AwsRule(name, sql, enabled=not off) for name, sql, _, off in RULES]
    expected: dict[str, set[str]] = {name: set() for name in endpoints}
    for message_id, (thing, topic, payload) in zip(ids, MESSAGES, strict=True):
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        for rule in aws:
            if rule.selects(topic, body, client_id=thing):
                for endpoint in by_rule[rule.name].endpoint_names:
                    expected[endpoint].add(message_id)

    # The plan routes all telemetry to events as well: every message, once.
    assert await read_event_hub(emulator, None) == Counter(ids)
    for name, endpoint in endpoints.items():
        if endpoint["type"] == "EventHub":
            landed = await read_event_hub(emulator, endpoint["target"])
        elif endpoint["type"] == "StorageContainer":
            landed, records = await read_container(emulator, endpoint["target"])
        else:
            queue = emulator.router.service_bus[endpoint["target"]]  # type: ignore[union-attr]
            landed = Counter(record["SystemProperties"]["messageId"] for record in queue)
        assert landed == Counter(expected[name]), name
    # Hand-checked, so the verdicts above are not all empty or all full.
    assert {name: len(ids) for name, ids in expected.items()} == {
        "eh-engine-stream": 2,
        "sa-telemetry-archive": 7,
        "eh-alarm-handler": 2,
        "sbq-vip": 1,
        "eh-disabled-stream": 0,
    }
    # JSON-encoded blobs: JSON bodies as documents, others in base64, one record a line.
    bodies = [record["Body"] for _, record in records]
    assert "cnBtPTkwMDA=" in bodies  # b"rpm=9000"
    assert {"rpm": 5000, "n": 10} in bodies
    assert all(name.startswith(f"{emulator.hub_name}/") for name, _ in records)
    verdicts = await check_routes(emulator.router, plan.rules, aws)
    assert all(verdict.ok for verdict in verdicts), [v.line() for v in verdicts]


async def test_a_route_iot_hub_would_refuse_is_refused_with_the_reason(emulator):
    response = await asyncio.to_thread(
        put_routing,
        emulator,
        {
            "endpoints": [{"name": "eh-x", "type": "EventHub", "target": "x"}],
            "routes": [
                {
                    "name": "bad",
                    "source": "DeviceMessages",
                    "condition": "ROUND($body.t) = 1",
                    "endpoint_names": ["eh-x"],
                    "enabled": True,
                }
            ],
        },
    )
    assert response.status_code == 400
    assert "route 'bad'" in response.text
    assert "unknown function 'ROUND'" in response.text
    # Nothing changed: still no routes, everything to events.
    assert emulator.router is not None
    assert emulator.router.config.routes == ()
