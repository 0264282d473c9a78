"""IoT Hub message routing: route conditions, custom endpoints and the fallback route.

`query` parses conditions in IoT Hub's routing query language, `evaluate` runs them over a
message (`values.RoutedMessage`), `config` reads routes and endpoints (a plan's Terraform
variables), `router` delivers each device message to its endpoints, `storage` writes the
storage container endpoints to Azurite.
"""

from bridge_sim.iothub.routing.config import (
    Endpoint,
    Route,
    RoutingConfig,
    RoutingConfigError,
    load_tfvars,
)
from bridge_sim.iothub.routing.query import RouteQueryError, parse_condition
from bridge_sim.iothub.routing.router import MessageRouter

__all__ = [
    "Endpoint",
    "MessageRouter",
    "Route",
    "RouteQueryError",
    "RoutingConfig",
    "RoutingConfigError",
    "load_tfvars",
    "parse_condition",
]
