"""Routes and custom endpoints, checked as IoT Hub checks them when they are saved.

Read from the plan's Terraform variables (`routes` and `endpoints` in
`landing-zone.auto.tfvars.json`), or from the same two lists sent to `/_emulator/routing`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bridge_sim.errors import SimulatorError
from bridge_sim.iothub.routing.query import Node, RouteQueryError, parse_condition

__all__ = [
    "BUILTIN_ENDPOINT",
    "ENDPOINT_TYPES",
    "SOURCES",
    "Endpoint",
    "Route",
    "RoutingConfig",
    "RoutingConfigError",
    "load_tfvars",
]

BUILTIN_ENDPOINT = "events"
ENDPOINT_TYPES = frozenset({"EventHub", "StorageContainer", "ServiceBusQueue", "ServiceBusTopic"})
# IoT Hub's routing sources; only DeviceMessages carries telemetry.
SOURCES = frozenset(
    {
        "DeviceMessages",
        "TwinChangeEvents",
        "DeviceLifecycleEvents",
        "DeviceConnectionStateEvents",
        "DeviceJobLifecycleEvents",
        "DigitalTwinChangeEvents",
        "Invalid",
    }
)
_NAME = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
# Names IoT Hub keeps for itself.
_RESERVED = {"events", "fileNotifications", "$default"}


class RoutingConfigError(SimulatorError):
    """Raised for routes or endpoints IoT Hub would refuse to save; the message says why."""


@dataclass(frozen=True)
class Endpoint:
    """A custom endpoint: its name, type and target (event hub, container, queue or topic)."""

    name: str
    type: str
    target: str


@dataclass(frozen=True)
class Route:
    """One route, its condition parsed."""

    name: str
    source: str
    condition: str
    endpoint_names: tuple[str, ...]
    enabled: bool
    parsed: Node = field(compare=False, repr=False)


@dataclass(frozen=True)
class RoutingConfig:
    """The hub's routes, custom endpoints and fallback route."""

    routes: tuple[Route, ...] = ()
    endpoints: tuple[Endpoint, ...] = ()
    fallback: bool = True

    @classmethod
    def from_tfvars(cls, variables: Mapping[str, Any], *, fallback: bool = True) -> RoutingConfig:
        """Check and build the config from the `routes` and `endpoints` variables."""
        endpoints = tuple(_endpoint(raw) for raw in _list(variables, "endpoints"))
        names = [endpoint.name.lower() for endpoint in endpoints]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise RoutingConfigError(f"endpoint names are not unique: {', '.join(duplicates)}")
        known = {BUILTIN_ENDPOINT, *names}
        routes = tuple(_route(raw, known) for raw in _list(variables, "routes"))
        route_names = [route.name.lower() for route in routes]
        duplicates = sorted({name for name in route_names if route_names.count(name) > 1})
        if duplicates:
            raise RoutingConfigError(f"route names are not unique: {', '.join(duplicates)}")
        return cls(routes=routes, endpoints=endpoints, fallback=fallback)

    def to_json(self) -> dict[str, Any]:
        """The config as `/_emulator/routing` shows it."""
        return {
            "routes": [
                {
                    "name": r.name,
                    "source": r.source,
                    "condition": r.condition,
                    "endpoint_names": list(r.endpoint_names),
                    "enabled": r.enabled,
                }
                for r in self.routes
            ],
            "endpoints": [
                {"name": e.name, "type": e.type, "target": e.target} for e in self.endpoints
            ],
            "fallback": self.fallback,
        }


def load_tfvars(path: Path, *, fallback: bool = True) -> RoutingConfig:
    """The routing config in a plan's `landing-zone.auto.tfvars.json`."""
    try:
        variables = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise RoutingConfigError(f"cannot read {path}: {error}") from error
    if not isinstance(variables, dict):
        raise RoutingConfigError(f"{path} is not a JSON object")
    return RoutingConfig.from_tfvars(variables, fallback=fallback)


def _list(variables: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    value = variables.get(key, [])
    if not isinstance(value, list) or not all(isinstance(item, Mapping) for item in value):
        raise RoutingConfigError(f"'{key}' must be a list of objects")
    return value


def _text(raw: Mapping[str, Any], key: str, what: str) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not value:
        raise RoutingConfigError(f"{what} needs a non-empty string '{key}'")
    return value


def _endpoint(raw: Mapping[str, Any]) -> Endpoint:
    name = _text(raw, "name", "an endpoint")
    kind = _text(raw, "type", f"endpoint {name!r}")
    if not _NAME.match(name) or name in _RESERVED:
        raise RoutingConfigError(f"endpoint name {name!r} is invalid or reserved")
    if kind not in ENDPOINT_TYPES:
        raise RoutingConfigError(
            f"endpoint {name!r}: type {kind!r} is not one of {', '.join(sorted(ENDPOINT_TYPES))}"
        )
    return Endpoint(name=name, type=kind, target=_text(raw, "target", f"endpoint {name!r}"))


def _route(raw: Mapping[str, Any], known_endpoints: set[str]) -> Route:
    name = _text(raw, "name", "a route")
    if not _NAME.match(name):
        raise RoutingConfigError(f"route name {name!r}: 1-64 letters, digits, '.', '_', '-'")
    source = _text(raw, "source", f"route {name!r}")
    if source not in SOURCES:
        raise RoutingConfigError(f"route {name!r}: unknown source {source!r}")
    condition = raw.get("condition", "true")
    if not isinstance(condition, str):
        raise RoutingConfigError(f"route {name!r}: the condition must be a string")
    try:
        parsed = parse_condition(condition)
    except RouteQueryError as error:
        raise RoutingConfigError(
            f"route {name!r}: invalid condition {condition!r}: {error}"
        ) from error
    endpoint_names = raw.get("endpoint_names", [])
    if not isinstance(endpoint_names, list) or len(endpoint_names) != 1:
        # IoT Hub's routes carry exactly one endpoint name.
        raise RoutingConfigError(f"route {name!r}: endpoint_names must list exactly one endpoint")
    missing = [
        e for e in endpoint_names if not isinstance(e, str) or e.lower() not in known_endpoints
    ]
    if missing:
        raise RoutingConfigError(f"route {name!r}: no endpoint named {missing[0]!r}")
    return Route(
        name=name,
        source=source,
        condition=condition,
        endpoint_names=tuple(endpoint_names),
        enabled=bool(raw.get("enabled", True)),
        parsed=parsed,
    )
