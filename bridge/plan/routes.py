"""Translated topic rules as IoT Hub routes and the custom endpoints they send to."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

from bridge.mapping.models import RulePlan
from bridge.plan.rules import EndpointSuggestion, RuleTranslation

__all__ = ["BRIDGE_ROUTES", "Endpoint", "RoutingPlan", "plan_routes"]

# IoT Hub limits for a paid hub (Microsoft's quotas page).
MAX_ROUTES = 100
MAX_CUSTOM_ENDPOINTS = 10
_NAME_LENGTH = 64


@dataclass(frozen=True, order=True)
class Endpoint:
    """A custom routing endpoint as the Terraform module's `endpoints` variable takes it."""

    name: str
    type: str
    target: str


# Routes the bridge itself needs. Once any route exists, a message goes to the built-in
# endpoint only if a route sends it there, so telemetry is routed there explicitly;
# connection-state events prove a cutover and twin changes feed the reverse sync.
BRIDGE_ROUTES: tuple[tuple[str, str], ...] = (
    ("bridge-telemetry-to-events", "DeviceMessages"),
    ("bridge-connection-state", "DeviceConnectionStateEvents"),
    ("bridge-twin-changes", "TwinChangeEvents"),
)

# Suggestion kind -> (endpoint type, name prefix, setting keys naming the target, in order).
_ENDPOINT_KINDS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "storage_container": ("StorageContainer", "sa", ("bucketName",)),
    "event_hubs": (
        "EventHub",
        "eh",
        ("streamName", "deliveryStreamName", "topic", "functionArn", "destinationArn"),
    ),
    "azure_data_explorer": ("EventHub", "eh", ("tableName",)),
    "service_bus_queue": ("ServiceBusQueue", "sbq", ("queueUrl",)),
    "service_bus_topic": ("ServiceBusTopic", "sbt", ("targetArn",)),
}


@dataclass
class RoutingPlan:
    """Rules as routes, and the endpoints and entities the module must create for them."""

    rules: list[RulePlan] = field(default_factory=list)
    endpoints: list[Endpoint] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def targets(self, endpoint_type: str) -> list[str]:
        """Sorted distinct targets of one endpoint type."""
        return sorted({e.target for e in self.endpoints if e.type == endpoint_type})

    def route_variables(self) -> list[dict[str, Any]]:
        """The rules' routes as the Terraform module's `routes` variable takes them.

        An IoT Hub route names exactly one endpoint ("currently only one endpoint is
        allowed"), so a rule with several endpoints becomes one route per endpoint, the
        first under the rule's route name and the others under that name and the endpoint's.
        """
        used = {name for name, _ in BRIDGE_ROUTES} | {
            r.route_name for r in self.rules if r.route_name
        }
        routes: list[dict[str, Any]] = []
        for rule in self.rules:
            if not rule.route_name:
                continue
            for index, endpoint in enumerate(rule.endpoint_names):
                name = rule.route_name
                if index:
                    name = _unique(_name(f"{rule.route_name}-{endpoint}"), used)
                routes.append(
                    {
                        "name": name,
                        "source": rule.source,
                        "condition": rule.condition,
                        "endpoint_names": [endpoint],
                        "enabled": rule.enabled,
                    }
                )
        return routes


def plan_routes(translations: list[RuleTranslation]) -> RoutingPlan:
    """Routes for every translatable rule, sorted by rule name; limits checked."""
    plan = RoutingPlan()
    endpoints: dict[tuple[str, str], Endpoint] = {}
    used_names = {name for name, _ in BRIDGE_ROUTES}
    for translation in sorted(translations, key=lambda t: t.rule_name):
        plan.rules.append(_rule_plan(translation, endpoints, used_names))
    plan.endpoints = sorted(endpoints.values())
    routes = len(plan.route_variables()) + len(BRIDGE_ROUTES)
    if routes > MAX_ROUTES:
        plan.problems.append(f"{routes} routes exceed IoT Hub's {MAX_ROUTES} per hub")
    if len(plan.endpoints) > MAX_CUSTOM_ENDPOINTS:
        plan.problems.append(
            f"{len(plan.endpoints)} custom endpoints exceed IoT Hub's {MAX_CUSTOM_ENDPOINTS} "
            "per hub; merge targets or fan out downstream of one Event Hub"
        )
    return plan


def _rule_plan(
    translation: RuleTranslation,
    endpoints: dict[tuple[str, str], Endpoint],
    used_names: set[str],
) -> RulePlan:
    issues = [f"{issue.code}: {issue.message}" for issue in translation.issues]
    names: list[str] = []
    manual: list[str] = []
    for suggestion in translation.endpoints:
        issues.extend(f"{i.code}: {i.message}" for i in suggestion.issues)
        endpoint = _endpoint(suggestion)
        if endpoint is None:
            manual.append(_manual_action(suggestion))
            continue
        endpoint = endpoints.setdefault((endpoint.type, endpoint.target), endpoint)
        if endpoint.name not in names:
            names.append(endpoint.name)
        if not suggestion.native:
            manual.append(_manual_action(suggestion))
    routable = translation.source is not None and translation.route_condition is not None
    route_name = None
    if routable and names:
        route_name = _unique(_name(translation.rule_name), used_names)
    elif routable:
        issues.append("NO_ENDPOINT: no action maps to an IoT Hub routing endpoint")
    return RulePlan(
        rule_name=translation.rule_name,
        route_name=route_name,
        source=translation.source.value if translation.source else None,
        condition=translation.route_condition,
        endpoint_names=names if route_name else [],
        enabled=translation.enabled,
        manual_actions=manual,
        issues=list(dict.fromkeys(issues)),
        topic_filter=translation.topic_filter,
        device_level=translation.device_level,
    )


def _endpoint(suggestion: EndpointSuggestion) -> Endpoint | None:
    kind = _ENDPOINT_KINDS.get(suggestion.kind)
    if kind is None:
        return None
    endpoint_type, prefix, keys = kind
    raw = next((suggestion.details[key] for key in keys if suggestion.details.get(key)), "")
    if not raw or "${" in raw:
        # A per-message template cannot name a fixed endpoint.
        return None
    if suggestion.kind == "azure_data_explorer":
        raw = f"{suggestion.details.get('databaseName', 'adx')}-{raw}"
    target = _entity_name(raw, lowercase=endpoint_type == "StorageContainer")
    return Endpoint(name=_name(f"{prefix}-{target}"), type=endpoint_type, target=target)


def _manual_action(suggestion: EndpointSuggestion) -> str:
    note = suggestion.details.get("azure", "")
    return f"{suggestion.action_type} -> {suggestion.kind}" + (f": {note}" if note else "")


def _entity_name(raw: str, *, lowercase: bool) -> str:
    """The last segment of a URL or ARN, made valid for Azure entity names."""
    last = re.split(r"[/:]", raw.rstrip("/"))[-1] or raw
    cleaned = re.sub(r"[^A-Za-z0-9-]+", "-", last).strip("-")
    if lowercase:
        # Containers: 3-63 lower-case letters, digits and single hyphens.
        cleaned = re.sub(r"-{2,}", "-", cleaned.lower()).ljust(3, "0")[:63].strip("-")
    return cleaned or "target"


def _name(raw: str) -> str:
    """A route or endpoint name: letters, digits, '.', '_', '-', at most 64 characters."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "-", raw)
    if len(cleaned) <= _NAME_LENGTH:
        return cleaned
    digest = hashlib.sha256(raw.encode()).hexdigest()[:8]
    return f"{cleaned[: _NAME_LENGTH - 9]}-{digest}"


def _unique(name: str, used: set[str]) -> str:
    candidate, number = name, 2
    # IoT Hub compares route names ignoring case.
    while candidate.lower() in {u.lower() for u in used}:
        suffix = f"-{number}"
        candidate, number = name[: _NAME_LENGTH - len(suffix)] + suffix, number + 1
    used.add(candidate)
    return candidate
