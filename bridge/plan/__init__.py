"""Plan step: turn the AWS inventory into an Azure landing zone and a migration plan."""

from bridge.errors import PlanError
from bridge.mapping.models import (
    PLAN_SCHEMA_VERSION,
    AuthMode,
    DevicePlan,
    Gap,
    MigrationPlan,
    PlanOptions,
    RulePlan,
    Sizing,
    Tier,
)
from bridge.plan.cli import plan_command
from bridge.plan.devices import plan_devices
from bridge.plan.gaps import find_gaps
from bridge.plan.landing_zone import landing_zone_tfvars
from bridge.plan.loader import load_inventory, parse_inventory
from bridge.plan.planner import PlanResult, build_plan, write_plan
from bridge.plan.report import render_report
from bridge.plan.routes import plan_routes
from bridge.plan.sizing import choose_sizing

__all__ = [
    "PLAN_SCHEMA_VERSION",
    "AuthMode",
    "DevicePlan",
    "Gap",
    "MigrationPlan",
    "PlanError",
    "PlanOptions",
    "PlanResult",
    "RulePlan",
    "Sizing",
    "Tier",
    "build_plan",
    "choose_sizing",
    "find_gaps",
    "landing_zone_tfvars",
    "load_inventory",
    "parse_inventory",
    "plan_command",
    "plan_devices",
    "plan_routes",
    "render_report",
    "write_plan",
]
