"""`iot-bridge sim ...` and `iot-bridge rehearse`: the stand-ins' commands.

They reach the product's command line through the `iot_bridge.commands` entry point, so
the product never imports the stand-ins: installed alone, it simply has no such commands.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from bridge.cli_errors import guarded
from bridge.logging import configure_logging

__all__ = ["register"]

sim_app = typer.Typer(no_args_is_help=True, help="Local stand-ins for AWS IoT Core and IoT Hub.")


@sim_app.command("up")
@guarded("sim up")
def sim_up(
    env_file: Annotated[
        Path, typer.Option("--env-file", help="Where to write the settings for the stand-ins.")
    ] = Path(".env.sim"),
    state_dir: Annotated[
        Path | None,
        typer.Option("--state-dir", help="Working directory for certificates and logs."),
    ] = None,
    things: Annotated[
        int,
        typer.Option(min=0, help="Build a realistic estate of this many things in the stand-in."),
    ] = 0,
    routes: Annotated[
        Path | None,
        typer.Option(
            "--routes",
            exists=True,
            dir_okay=False,
            help="A plan's landing-zone.auto.tfvars.json: route device messages by its routes "
            "and endpoints, as IoT Hub would.",
        ),
    ] = None,
) -> None:
    """Start the local stand-ins in the foreground until Ctrl-C, and write their settings."""
    from bridge_sim.stack import run_until_interrupted  # noqa: PLC0415 - heavy imports, only here

    configure_logging()
    asyncio.run(
        run_until_interrupted(env_file=env_file, state_dir=state_dir, things=things, routes=routes)
    )


def rehearse(  # noqa: PLR0917 - typer maps each parameter to an option
    things: Annotated[int, typer.Option(min=1, help="Things in the simulated estate.")] = 300,
    workdir: Annotated[
        Path, typer.Option(help="Where the inventory, the plan and the stand-ins' state go.")
    ] = Path("rehearsal"),
    env_file: Annotated[
        Path, typer.Option("--env-file", help="Where to write the stand-ins' settings.")
    ] = Path(".env.sim"),
    stay_up: Annotated[
        bool, typer.Option(help="Keep the stand-ins and the daemon up afterwards, until Ctrl-C.")
    ] = False,
    devices: Annotated[
        int,
        typer.Option(
            min=0, help="Simulated devices running the migration agent, cut over in waves."
        ),
    ] = 50,
    deadline: Annotated[
        int, typer.Option(min=5, help="Seconds a device has to show up on Azure in its wave.")
    ] = 30,
) -> None:
    """Rehearse a migration window on the local stand-ins, end to end: estate, fleet,
    discovery, plan, mirror, relay, cutover in waves, and a verification of every device.

    Exits 0 only when every device is on Azure or rolled back with its reason and no
    reading was lost (exit code 5 otherwise); the report is printed and written to the
    work directory."""
    from bridge_sim.rehearse import RehearsalOptions  # noqa: PLC0415 - heavy imports, only here
    from bridge_sim.rehearse import rehearse as run_rehearsal  # noqa: PLC0415

    configure_logging("WARNING")
    options = RehearsalOptions(
        things=things,
        workdir=workdir,
        env_file=env_file,
        stay_up=stay_up,
        devices=devices,
        deadline=deadline,
    )
    raise typer.Exit(asyncio.run(run_rehearsal(options)))


def register(app: typer.Typer) -> None:
    """Add the stand-ins' commands to the `iot-bridge` command line."""
    app.add_typer(sim_app, name="sim")
    app.command("rehearse")(guarded("rehearse")(rehearse))
