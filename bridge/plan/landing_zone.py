"""Terraform variables for the landing zone module in `terraform/`."""

from __future__ import annotations

import hashlib
import re
from typing import Any

from bridge.errors import PlanError
from bridge.inventory import Inventory
from bridge.mapping.models import PLAN_SCHEMA_VERSION, PlanOptions, Sizing
from bridge.plan.routes import BRIDGE_ROUTES, RoutingPlan

__all__ = ["CONSUMER_GROUPS", "IMPORT_EXPORT_CONTAINER", "ResourceNames", "landing_zone_tfvars"]

IMPORT_EXPORT_CONTAINER = "device-import-export"
# The bridge reads connection-state events for cutover on its own consumer group, so it never
# competes with the operator's readers on $Default; the reverse path has one of its own
# (BRIDGE_REVERSE__CONSUMER_GROUP), because epoch readers in one group take partitions
# from each other.
CONSUMER_GROUPS = ("iot-bridge", "iot-bridge-reverse", "migration-validation")
_HUB_NAME = re.compile(r"^[A-Za-z0-9-]{3,50}$")


class ResourceNames:
    """Azure names derived from the hub name, deterministic so re-planning changes nothing."""

    def __init__(self, inventory: Inventory, options: PlanOptions) -> None:
        account = inventory.account_id or "estate"
        default_hub = f"iothub-{inventory.region}-{account}"[:50].strip("-")
        self.hub = options.hub_name or default_hub
        if options.hub_name and not _HUB_NAME.fullmatch(self.hub):
            raise PlanError(f"hub name {self.hub!r}: use 3-50 letters, digits and hyphens")
        if not _HUB_NAME.fullmatch(self.hub):
            # Derived from the inventory, so the inventory is what is odd, not an option.
            raise PlanError(
                f"the inventory's region {inventory.region!r} and account {account!r} make no "
                f"valid hub name ({self.hub!r}); pass --hub-name"
            )
        self.resource_group = options.resource_group or f"rg-{self.hub}"
        digest = hashlib.sha256(self.hub.encode()).hexdigest()[:6]
        self.storage_account = "st" + re.sub(r"[^a-z0-9]", "", self.hub.lower())[:16] + digest
        self.eventhub_namespace = f"{self.hub}-eh"
        self.servicebus_namespace = f"{self.hub}-sb"
        self.dps = f"{self.hub}-dps"


def landing_zone_tfvars(
    inventory: Inventory, options: PlanOptions, sizing: Sizing, routing: RoutingPlan
) -> dict[str, Any]:
    """Every variable of `terraform/variables.tf`, nothing else."""
    names = ResourceNames(inventory, options)
    routes: list[dict[str, Any]] = [
        {
            "name": name,
            "source": source,
            "condition": "true",
            "endpoint_names": ["events"],
            "enabled": True,
        }
        for name, source in BRIDGE_ROUTES
    ]
    routes.extend(routing.route_variables())
    return {
        "resource_group_name": names.resource_group,
        "location": options.location,
        "iothub_name": names.hub,
        "iothub_sku_name": sizing.tier.value,
        "iothub_sku_capacity": sizing.units,
        "d2c_partition_count": sizing.partitions,
        "consumer_groups": list(CONSUMER_GROUPS),
        "storage_account_name": names.storage_account,
        "storage_containers": sorted(
            {IMPORT_EXPORT_CONTAINER, *routing.targets("StorageContainer")}
        ),
        "eventhub_namespace_name": names.eventhub_namespace,
        "event_hubs": routing.targets("EventHub"),
        "servicebus_namespace_name": names.servicebus_namespace,
        "servicebus_queues": routing.targets("ServiceBusQueue"),
        "servicebus_topics": routing.targets("ServiceBusTopic"),
        "endpoints": [
            {"name": e.name, "type": e.type, "target": e.target} for e in routing.endpoints
        ],
        "routes": routes,
        "dps_name": names.dps,
        "tags": {
            "aws-account": inventory.account_id or "unknown",
            "aws-region": inventory.region,
            "iot-bridge-plan": PLAN_SCHEMA_VERSION,
        },
    }
