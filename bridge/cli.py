"""The `iot-bridge` command line."""

from __future__ import annotations

import asyncio
import json
import os
from importlib.metadata import entry_points
from pathlib import Path
from typing import Annotated

import typer

from bridge import __version__
from bridge.cli_errors import DEBUG, explain, guarded
from bridge.config import SECRETS_DIR_ENV, CloudSettings, Settings, redacted
from bridge.firmware.cli import firmware_app
from bridge.logging import configure_logging

__all__ = ["app", "main"]

app = typer.Typer(no_args_is_help=True, help="Live migration of an AWS IoT fleet to Azure IoT Hub.")
config_app = typer.Typer(no_args_is_help=True, help="Inspect the resolved settings.")
app.add_typer(config_app, name="config")
app.add_typer(firmware_app, name="firmware")

EnvFile = Annotated[
    Path | None,
    typer.Option("--env-file", help="dotenv file with the cloud connection settings."),
]


@app.callback()
def root(
    debug: Annotated[
        bool, typer.Option("--debug", help="Show the traceback of an error, not one sentence.")
    ] = False,
    secrets_dir: Annotated[
        Path | None,
        typer.Option(
            "--secrets-dir",
            envvar=SECRETS_DIR_ENV,
            help="Directory of secret files named after their setting "
            "(IOTHUB_CONNECTION_STRING...); default /run/secrets when it exists.",
        ),
    ] = None,
) -> None:
    """Live migration of an AWS IoT fleet to Azure IoT Hub."""
    DEBUG["on"] = debug
    if secrets_dir is not None:  # the settings read it from the environment
        os.environ[SECRETS_DIR_ENV] = str(secrets_dir)


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(__version__)


@config_app.command("show")
@guarded("config show")
def config_show(env_file: EnvFile = None) -> None:
    """Print the resolved settings with every secret redacted."""
    cloud = CloudSettings(_env_file=env_file)
    settings = Settings(_env_file=env_file)
    typer.echo(json.dumps({"cloud": redacted(cloud), "bridge": redacted(settings)}, indent=2))


@app.command("discover")
@guarded("discover")
def discover_cmd(
    env_file: EnvFile = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="Inventory JSON to write.")] = Path(
        "inventory.json"
    ),
    concurrency: Annotated[int, typer.Option(min=1, max=512, help="Requests in flight.")] = 32,
    rate_scale: Annotated[
        float,
        typer.Option(
            help="Multiplies the per-API request budgets; 0 disables them (stand-ins only)."
        ),
    ] = 1.0,
    resume: Annotated[
        bool, typer.Option(help="Continue an interrupted run from its journal.")
    ] = True,
    shadows: Annotated[bool, typer.Option(help="Read classic and named shadows.")] = True,
) -> None:
    """Read the AWS IoT estate into a versioned inventory JSON."""
    from bridge.discover import DiscoveryOptions, discover  # noqa: PLC0415 - heavy imports
    from bridge.progress import progress_reporter  # noqa: PLC0415

    configure_logging()
    cloud = CloudSettings(_env_file=env_file)
    with progress_reporter() as progress:
        options = DiscoveryOptions(
            concurrency=concurrency,
            rate_scale=rate_scale,
            resume=resume,
            shadows=shadows,
            progress=progress,
        )
        inventory = asyncio.run(discover(cloud, output, options))
    typer.echo(
        f"{len(inventory.things)} things, {len(inventory.thing_groups)} groups, "
        f"{len(inventory.certificates)} certificates, {len(inventory.findings)} findings "
        f"-> {output}"
    )


@app.command("run")
@guarded("run")
def run_cmd(
    env_file: EnvFile = None,
    plan: Annotated[
        Path | None,
        typer.Option(
            help="Migration plan JSON from `iot-bridge plan`: per-device auth, and the "
            "telemetry topics the relay carries."
        ),
    ] = None,
    once: Annotated[
        bool,
        typer.Option(help="Initial sync, one anti-entropy pass, then exit (a catch-up run)."),
    ] = False,
    enable_registry_events: Annotated[
        bool,
        typer.Option(
            "--enable-registry-events",
            help="Turn on the AWS IoT registry events the mirror needs if they are off.",
        ),
    ] = False,
) -> None:
    """Mirror every thing and shadow into IoT Hub, live, until SIGTERM or Ctrl-C."""
    from bridge.daemon.app import RunOptions, build_daemon  # noqa: PLC0415 - heavy imports

    settings = Settings(_env_file=env_file)
    cloud = CloudSettings(_env_file=env_file)
    if enable_registry_events:
        mirror = settings.mirror.model_copy(update={"enable_registry_events": True})
        settings = settings.model_copy(update={"mirror": mirror})
    configure_logging(settings.log_level)
    daemon = build_daemon(cloud, settings, RunOptions(plan=plan, once=once))
    code = asyncio.run(daemon.serve())
    if daemon.failure is not None:
        known = explain(daemon.failure)
        code, sentence = known or (code, str(daemon.failure))
        typer.echo(f"iot-bridge run: could not start: {sentence}", err=True)
    raise typer.Exit(int(code))


@app.command("status")
@guarded("status")
def status_cmd(
    env_file: EnvFile = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    limit: Annotated[int, typer.Option(min=1, help="Problems and dead letters shown.")] = 20,
) -> None:
    """Devices per migration state, devices with a problem, and dead letters."""
    from bridge.daemon.status import read_status, render_status  # noqa: PLC0415

    settings = Settings(_env_file=env_file)
    status = asyncio.run(read_status(settings.store.dsn, limit=limit))
    typer.echo(json.dumps(status, indent=2) if as_json else render_status(status))


def _register_plan() -> None:
    from bridge.plan.cli import plan_command  # noqa: PLC0415 - keeps `--help` fast

    app.command("plan")(guarded("plan")(plan_command))


_register_plan()


def _register_cutover() -> None:
    from bridge.cutover.cli import COMMANDS, cutover_app  # noqa: PLC0415 - keeps `--help` fast

    for name, (command, help_text) in COMMANDS.items():
        cutover_app.command(name, help=help_text)(guarded(f"cutover {name}")(command))
    app.add_typer(cutover_app, name="cutover")


_register_cutover()


def _register_plugins() -> None:
    """Commands other distributions add (the stand-ins add `sim` and `rehearse`)."""
    for entry in entry_points(group="iot_bridge.commands"):
        try:
            register = entry.load()
        except ImportError as exc:  # a broken add-on must not take the product's CLI down
            typer.echo(f"iot-bridge: commands of {entry.value} unavailable: {exc}", err=True)
            continue
        register(app)


_register_plugins()


def main() -> None:
    """Entry point of the console script."""
    app()
