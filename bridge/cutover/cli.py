"""`iot-bridge cutover ...`: plan, start, pause, resume, abort, roll back and look at waves.

The commands write the store; the daemon (`iot-bridge run`) acts on it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from botocore.exceptions import ClientError
from pydantic import ValidationError

from bridge.aws.clients import open_clients
from bridge.aws.ratelimit import RateLimiter
from bridge.aws.search import search_things
from bridge.config import CloudSettings, Settings
from bridge.core.store import Store, open_store
from bridge.cutover.finalize import restore_aws
from bridge.cutover.job import Firmware
from bridge.cutover.operator import plan_wave, render_status, set_wave_state, wave_status
from bridge.cutover.report import cutover_report
from bridge.cutover.wave import MAX_RETRIES
from bridge.errors import WaveError
from bridge.files import write_atomically
from bridge.reports.cutover import render_cutover_report

__all__ = ["cutover_app"]

T = TypeVar("T")

cutover_app = typer.Typer(no_args_is_help=True, help="Move devices to IoT Hub in waves.")

EnvFile = Annotated[
    Path | None,
    typer.Option("--env-file", help="dotenv file with the cloud connection settings."),
]
Name = Annotated[str, typer.Argument(help="The wave's name.")]


def _with_store(
    env_file: Path | None, work: Callable[[Store], Awaitable[T]], *, existing: bool
) -> T:
    settings = Settings(_env_file=env_file)

    async def run() -> T:
        async with open_store(settings.store.dsn, existing=existing) as store:
            return await work(store)

    return asyncio.run(run())


# What SearchIndex answers for a query or an index it cannot use: the operator's to fix.
_QUERY_REFUSED = frozenset(
    {"InvalidQueryException", "InvalidRequestException", "IndexNotReadyException"}
)


def plan(
    name: Name,
    env_file: EnvFile = None,
    devices: Annotated[
        str | None, typer.Option(help="Comma-separated device ids (thing names).")
    ] = None,
    group: Annotated[str | None, typer.Option(help="Thing group whose members move.")] = None,
    success_threshold: Annotated[
        float, typer.Option(min=0, max=1, help="Share that must end on Azure.")
    ] = 1.0,
    abort_threshold: Annotated[
        float, typer.Option(min=0.01, max=1, help="Share rolled back past which the wave aborts.")
    ] = 0.5,
    deadline: Annotated[
        int, typer.Option(min=1, help="Seconds a device has to show up on Azure.")
    ] = 300,
    max_per_minute: Annotated[int, typer.Option(min=1, max=1000, help="AWS rollout cap.")] = 60,
    thing_type: Annotated[
        str | None, typer.Option("--thing-type", help="Thing type whose things move.")
    ] = None,
    query: Annotated[
        str | None,
        typer.Option(help="Fleet-indexing query whose things move (e.g. 'attributes.site:lyon')."),
    ] = None,
    base_per_minute: Annotated[
        int | None,
        typer.Option(
            "--base-per-minute",
            min=1,
            max=1000,
            help="Exponential rollout: start at this many a minute (up to --max-per-minute).",
        ),
    ] = None,
    increment_factor: Annotated[
        float, typer.Option(min=1.1, max=5.0, help="Exponential rollout: rate multiplier.")
    ] = 2.0,
    increase_every: Annotated[
        int, typer.Option(min=1, help="Exponential rollout: devices notified per increase.")
    ] = 10,
    firmware: Annotated[
        Path | None,
        typer.Option(
            help="JSON of the OTA artifact the job carries ({url, size, sha256}, as "
            "`iot-bridge firmware patch --package` prints it).",
        ),
    ] = None,
    retries: Annotated[
        int,
        typer.Option(
            min=0,
            max=MAX_RETRIES,
            help="Attempts AWS adds for a device whose execution FAILED or TIMED_OUT "
            "(jobExecutionsRetryConfig); its verdict waits for the last one.",
        ),
    ] = 0,
) -> None:
    """Plan a wave over devices, a thing group, a thing type or a fleet-index query (each
    selection given adds to the wave)."""
    chosen = [d.strip() for d in (devices or "").split(",") if d.strip()]
    if not chosen and group is None and thing_type is None and query is None:
        raise typer.BadParameter("give --devices, --group, --thing-type or --query")

    async def search(text: str) -> list[str]:
        cloud = CloudSettings(_env_file=env_file)
        async with open_clients(cloud, RateLimiter(), concurrency=1) as (iot, _data):
            try:
                return await search_things(iot, text)
            except ClientError as exc:
                error = exc.response.get("Error", {})
                if error.get("Code") not in _QUERY_REFUSED:
                    raise
                message = f"AWS refused the fleet-index query {text!r}: {error.get('Message')}"
                raise WaveError(message, wave=name) from exc

    spec = _with_store(
        env_file,
        lambda store: plan_wave(
            store,
            name,
            devices=chosen,
            group=group,
            thing_type=thing_type,
            query=query,
            search=search,
            success_threshold=success_threshold,
            abort_threshold=abort_threshold,
            deadline_seconds=deadline,
            max_per_minute=max_per_minute,
            base_per_minute=base_per_minute,
            increment_factor=increment_factor,
            increase_every=increase_every,
            firmware=_artifact(firmware) if firmware else None,
            retries=retries,
        ),
        existing=True,  # the devices come from the mirror's store; never create one here
    )
    rollout = (
        f"exponential from {spec.base_per_minute}/min x{spec.increment_factor:g}"
        if spec.base_per_minute
        else "constant"
    )
    retried = f"; up to {spec.attempts()} attempts a device" if spec.retries else ""
    typer.echo(
        f"wave {name}: planned, {len(spec.devices)} devices; rollout {rollout} up to "
        f"{spec.max_per_minute}/min, about {spec.rollout_seconds() / 60:.0f} min to reach all"
        f"{retried}"
    )


def _artifact(path: Path) -> Firmware:
    """The OTA artifact described in `path`, checked before it goes into a job."""
    try:
        return Firmware.model_validate_json(path.read_text(encoding="utf-8"))
    except ValidationError as exc:
        problem = exc.errors()[0]
        where = ".".join(str(part) for part in problem["loc"]) or "the document"
        message = f"{path} is not an OTA artifact ({where}: {problem['msg']})"
        raise typer.BadParameter(message, param_hint="--firmware") from None


def _mover(command: str, done: str) -> Callable[..., None]:
    def move(name: Name, env_file: EnvFile = None) -> None:
        _with_store(env_file, lambda store: set_wave_state(store, name, command), existing=True)
        typer.echo(f"wave {name}: {done}")

    return move


def status(
    env_file: EnvFile = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Every wave, each device's state, outcome and reason."""
    waves: list[dict[str, Any]] = _with_store(env_file, wave_status, existing=True)
    typer.echo(json.dumps(waves, indent=2) if as_json else render_status(waves))


def report(
    wave: Annotated[
        str | None, typer.Argument(help="The wave to report on; default: every wave.")
    ] = None,
    env_file: EnvFile = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="HTML file to write.")] = Path(
        "cutover-report.html"
    ),
) -> None:
    """An HTML report of the waves: outcomes, reasons, timings, whether the next wave goes."""
    waves = _with_store(env_file, lambda store: cutover_report(store, wave), existing=True)
    page = render_cutover_report(waves, generated_at=datetime.now(UTC))
    write_atomically(out, page)
    typer.echo(f"cutover report: {len(waves)} waves -> {out}")


def restore(
    devices: Annotated[list[str], typer.Argument(help="Finalized devices (thing names).")],
    env_file: EnvFile = None,
) -> None:
    """Put back what finalizing retired on AWS: certificate status and policies."""
    cloud = CloudSettings(_env_file=env_file)

    async def work(store: Store) -> int:
        limiter = RateLimiter(scale=Settings(_env_file=env_file).mirror.aws_rate_scale)
        async with open_clients(cloud, limiter, concurrency=1) as (iot, _data):
            return sum([await restore_aws(store, iot, device) for device in devices])

    restored = _with_store(env_file, work, existing=True)
    typer.echo(f"restored {restored} certificates of {len(devices)} devices on AWS")


COMMANDS: dict[str, tuple[Callable[..., None], str]] = {
    "plan": (plan, "Plan a wave over a list of devices or a thing group."),
    "start": (
        _mover("start", "running (the daemon sends its job)"),
        "Start (or resume) a wave; the daemon sends its AWS IoT Job.",
    ),
    "pause": (_mover("pause", "paused"), "Stop looking at a running wave for now."),
    "resume": (_mover("resume", "running"), "Resume a paused wave."),
    "abort": (
        _mover("abort", "aborting (devices not moved stay on AWS)"),
        "Cancel the wave's job; devices already moving finish, the rest stay on AWS.",
    ),
    "rollback": (
        _mover("rollback", "rolling back"),
        "Cancel the wave's job, in-progress executions too; devices not on Azure stay on AWS.",
    ),
    "status": (status, "Every wave, each device's state, outcome and reason."),
    "restore-aws": (
        restore,
        "Reactivate the AWS certificates finalizing retired and attach their policies again.",
    ),
    "report": (
        report,
        "Write an HTML report of the waves: outcomes, reasons, timings, the next wave's verdict.",
    ),
}
