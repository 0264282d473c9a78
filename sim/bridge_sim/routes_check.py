"""Did each message land where the AWS rule sent it? The rehearsal's check of the plan's routes.

Every AWS-originated telemetry message IoT Hub took (the relay's and, after cutover, the
devices' own: both stamp `awsTopic`) is judged by each rule with `aws_rules.AwsRule`: the
topic filter and the WHERE clause on the payload, with the client id taken to be the device
id (the migration's assumption). Then each custom endpoint is read back (custom Event Hubs
from the emulator's logs, storage containers from Azurite with the blob SDK, Service Bus
from memory) and compared: a route is right when every message its rule selects is on its
endpoint, and nothing is on an endpoint that no rule routing there selects (a route the
planner marked a superset is allowed those extras).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from azure.storage.blob.aio import BlobServiceClient

from bridge.inventory.models import TopicRule
from bridge.mapping.models import RulePlan
from bridge.mapping.topics import TOPIC_PROPERTY
from bridge_sim.aws_rules import AwsRule
from bridge_sim.iothub.emulator import IotHubEmulator
from bridge_sim.iothub.eventhub.log import StoredEvent
from bridge_sim.iothub.routing import MessageRouter, load_tfvars

__all__ = ["RouteVerdict", "check_routes", "load_plan_routes", "verify_routes"]

Key = tuple[str, str]


@dataclass
class RouteVerdict:
    """One rule's route to one endpoint: what AWS would send there against what landed."""

    rule: str
    endpoint: str
    superset: bool
    expected: int = 0
    landed: int = 0
    missing: list[Key] = field(default_factory=list)
    unexpected: list[Key] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No message missing, and none unexpected unless the route is a superset."""
        return not self.missing and (self.superset or not self.unexpected)

    def line(self) -> str:
        """One line for the rehearsal's report."""
        verdict = "ok" if self.ok else "WRONG"
        extra = f", {len(self.unexpected)} no rule for this endpoint selects" * bool(
            self.unexpected
        )
        return (
            f"route {self.rule} -> {self.endpoint}: {self.landed} of {self.expected} messages "
            f"landed where the AWS rule sent them, {len(self.missing)} missing{extra} [{verdict}]"
        )


def _canonical(body: bytes) -> str:
    try:
        text = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":"))
    except ValueError:
        return base64.b64encode(body).decode()
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def _key(device_id: str, message_id: str | None, topic: str, body: bytes) -> Key:
    # The relay's ids are stable per message; a device's own messages may carry none.
    return device_id, message_id or f"{topic}|{_canonical(body)}"


def _event_key(event: StoredEvent) -> Key:
    topic = event.properties.get(TOPIC_PROPERTY, "")
    return _key(event.device_id, event.message_id, topic, event.body)


def _record_key(record: dict[str, Any]) -> Key:
    system = record["SystemProperties"]
    body = record["Body"]
    json_body = str(system.get("contentType", "")).lower() == "application/json"
    raw = json.dumps(body).encode() if json_body else base64.b64decode(body)
    topic = record["Properties"].get(TOPIC_PROPERTY, "")
    return _key(system["connectionDeviceId"], system.get("messageId"), topic, raw)


async def _container(router: MessageRouter, container: str) -> set[Key]:
    if router.storage_connection_string is None:
        return set()
    keys: set[Key] = set()
    async with BlobServiceClient.from_connection_string(router.storage_connection_string) as blobs:
        client = blobs.get_container_client(container)
        if not await client.exists():
            return keys
        async for blob in client.list_blobs():
            data = await (await client.download_blob(blob.name)).readall()
            keys.update(_record_key(json.loads(line)) for line in data.decode().splitlines())
    return keys


async def _landed(router: MessageRouter, endpoint: str) -> set[Key]:
    found = next((e for e in router.config.endpoints if e.name == endpoint), None)
    if found is None:
        return set()
    if found.type == "EventHub":
        return {_event_key(event) for event in router.event_hub(found.target).retained()}
    if found.type == "StorageContainer":
        return await _container(router, found.target)
    return {_record_key(record) for record in router.service_bus.get(found.target, [])}


async def check_routes(
    router: MessageRouter, plan_rules: Sequence[RulePlan], aws_rules: Sequence[AwsRule]
) -> list[RouteVerdict]:
    """One verdict per route of the plan (rule and endpoint), AWS's verdict against IoT Hub's."""
    await router.flush()
    messages = [e for e in router.events.retained() if TOPIC_PROPERTY in e.properties]
    by_name = {rule.name: rule for rule in aws_rules}
    selected: dict[str, set[Key]] = {}
    for rule in plan_rules:
        aws = by_name.get(rule.rule_name)
        selected[rule.rule_name] = {
            _event_key(event)
            for event in messages
            if aws is not None
            and aws.selects(event.properties[TOPIC_PROPERTY], event.body, event.device_id)
        }
    verdicts = []
    for rule in plan_rules:
        if not rule.route_name:
            continue
        superset = any(issue.startswith("SUPERSET_CONDITION") for issue in rule.issues)
        for endpoint in rule.endpoint_names:
            landed = await _landed(router, endpoint)
            allowed = set().union(
                *(selected[r.rule_name] for r in plan_rules if endpoint in r.endpoint_names)
            )
            expected = selected[rule.rule_name]
            verdicts.append(
                RouteVerdict(
                    rule=rule.rule_name,
                    endpoint=endpoint,
                    superset=superset,
                    expected=len(expected),
                    landed=len(expected & landed),
                    missing=sorted(expected - landed),
                    unexpected=sorted(landed - allowed),
                )
            )
    return verdicts


TFVARS_FILE = "landing-zone.auto.tfvars.json"


async def load_plan_routes(emulator: IotHubEmulator, plan_dir: Path) -> None:
    """Route the emulator's device messages by the plan's routes and endpoints from now on."""
    assert emulator.router is not None
    await emulator.router.configure(load_tfvars(plan_dir / TFVARS_FILE))


async def verify_routes(
    emulator: IotHubEmulator, plan_rules: Sequence[RulePlan], topic_rules: Sequence[TopicRule]
) -> tuple[list[str], bool]:
    """The rehearsal's route lines, and whether every route put its messages where AWS did."""
    assert emulator.router is not None
    aws = [AwsRule(rule.name, rule.sql, enabled=not rule.disabled) for rule in topic_rules]
    verdicts = await check_routes(emulator.router, plan_rules, aws)
    if not verdicts:
        return ["routes: the plan has no routes to custom endpoints"], True
    return [verdict.line() for verdict in verdicts], all(v.ok for v in verdicts)
