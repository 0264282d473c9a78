"""The `iot-bridge plan` command; registered in `bridge.cli`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bridge.errors import PlanError
from bridge.exit_codes import ExitCode
from bridge.mapping.models import AuthMode, PlanOptions, Tier
from bridge.plan.loader import load_inventory
from bridge.plan.planner import build_plan, write_plan

__all__ = ["plan_command"]

# An inventory or options the planner refuses: an unusable input (see bridge.exit_codes).
EXIT_PLAN_ERROR = ExitCode.STARTUP_FAILED


def plan_command(  # noqa: PLR0917 - typer commands take one parameter per option
    inventory: Annotated[Path, typer.Argument(help="Inventory JSON written by `discover`.")],
    output_dir: Annotated[
        Path, typer.Option("--output-dir", "-o", help="Where to write the plan files.")
    ] = Path("plan"),
    tier: Annotated[Tier | None, typer.Option(help="Impose the IoT Hub tier.")] = None,
    units: Annotated[int | None, typer.Option(min=1, help="Impose the IoT Hub units.")] = None,
    auth: Annotated[AuthMode, typer.Option(help="Device authentication.")] = AuthMode.X509,
    ca_mode: Annotated[
        bool,
        typer.Option(
            "--ca-mode",
            help="certificateAuthority for devices whose active certificates one registered "
            "CA issued (others keep thumbprints).",
        ),
    ] = False,
    hub_name: Annotated[str | None, typer.Option(help="IoT Hub name.")] = None,
    location: Annotated[str, typer.Option(help="Azure region.")] = "westeurope",
    resource_group: Annotated[str | None, typer.Option(help="Resource group name.")] = None,
    messages_per_device_per_day: Annotated[
        int, typer.Option(min=0, help="Expected device-to-cloud messages per device per day.")
    ] = 1440,
) -> None:
    """Plan the Azure landing zone (Terraform variables) and the per-device migration."""
    options = PlanOptions(
        tier=tier,
        units=units,
        auth=auth,
        ca_mode=ca_mode,
        hub_name=hub_name,
        location=location,
        resource_group=resource_group,
        messages_per_device_per_day=messages_per_device_per_day,
    )
    try:
        result = build_plan(load_inventory(inventory), options)
    except PlanError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_PLAN_ERROR) from exc
    for path in write_plan(result, output_dir):
        typer.echo(f"wrote {path}")
    plan = result.plan
    needing = sum(1 for device in plan.devices if device.needs_human)
    typer.echo(
        f"{len(plan.devices)} devices ({needing} need a human), {plan.sizing.units} x "
        f"{plan.sizing.tier}, {sum(1 for r in plan.rules if r.route_name)}/{len(plan.rules)} "
        f"rules routed, {len(plan.gaps)} gaps"
    )
