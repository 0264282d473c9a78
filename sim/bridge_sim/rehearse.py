"""`iot-bridge rehearse`: a migration window on the local stand-ins, start to finish.

Starts both stand-ins, builds a realistic estate in the AWS one, then runs what an
operations team runs against the real clouds: discovery, the plan, then the mirror
daemon (`iot-bridge run`) with its initial sync and a few live changes timed end to end,
then a canary cutover wave over a small simulated fleet running the migration agent (one
device rejects the job, to show a rollback). Later stages (relay, reverse) join as they
land. The stand-ins and the daemon stay up afterwards, with their settings in the env
file, so the team can look around.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import shutil
import signal
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bridge.aws.clients import open_clients
from bridge.aws.ratelimit import RateLimiter
from bridge.azure.hub import IotHubService
from bridge.config import CloudSettings, Settings
from bridge.core.store import open_store
from bridge.cutover.operator import plan_wave, set_wave_state, wave_status
from bridge.daemon.app import RunOptions, run_daemon
from bridge.daemon.status import read_status
from bridge.discover import DiscoveryOptions, discover
from bridge.errors import StoreError
from bridge.exit_codes import ExitCode
from bridge.logging import get_logger
from bridge.plan import PlanOptions, build_plan, write_plan
from bridge_sim.envfile import write_env_file
from bridge_sim.errors import SimulatorError
from bridge_sim.estate import EstateSpec, build_estate
from bridge_sim.fleet import Fleet
from bridge_sim.rehearsal_report import Rehearsal, render_rehearsal
from bridge_sim.stack import sim_stack

__all__ = ["RehearsalOptions", "rehearse"]

log = get_logger("rehearse")


@dataclass(frozen=True)
class RehearsalOptions:
    """What to rehearse, and where to put what it produces."""

    things: int = 300
    workdir: Path = Path("rehearsal")
    env_file: Path = Path(".env.sim")
    stay_up: bool = True
    fleet: int = 5  # simulated devices running the migration agent; 0 for none


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)  # noqa: T201 - the rehearsal talks to its operator


async def rehearse(options: RehearsalOptions) -> int:
    """Run the rehearsal; returns the process exit code."""
    workdir = options.workdir.resolve()
    record = Rehearsal()
    clock = time.monotonic()
    # The fleet's certificates and agent state belong to the stand-ins of one rehearsal.
    shutil.rmtree(workdir / "fleet", ignore_errors=True)
    async with sim_stack(workdir / "state") as stack, contextlib.AsyncExitStack() as stack_fleet:
        env = stack.env()
        write_env_file(options.env_file, env, header="Written by `iot-bridge rehearse`.")
        _say(f"1/6 stand-ins up; settings in {options.env_file}")
        clock = _stage(record, "stand-ins", clock)
        aws = stack.aws
        assert aws.shadows is not None
        estate = await asyncio.to_thread(
            build_estate, aws.moto, aws.shadows, EstateSpec(things=options.things)
        )
        _say(f"2/6 estate built: {len(estate.devices)} things in {len(estate.groups)} groups")
        clock = _stage(record, "estate", clock)
        fleet = (
            await stack_fleet.enter_async_context(
                Fleet(
                    env,
                    workdir / "fleet",
                    devices=max(options.fleet, 1),
                    prefix="fleet",
                    misbehaving={options.fleet - 1: ["reject"]} if options.fleet > 1 else {},
                    telemetry_interval=1.0,
                )
            )
            if options.fleet
            else None
        )
        if fleet is not None:
            _say(f"    fleet: {options.fleet} devices running the migration agent")
        cloud = CloudSettings.model_validate(env)
        inventory_path = workdir / "inventory.json"
        inventory = await discover(
            cloud, inventory_path, DiscoveryOptions(rate_scale=0, resume=False)
        )
        clock = _stage(record, "discovery", clock)
        result = build_plan(inventory, PlanOptions())
        written = write_plan(result, workdir / "plan")
        plan = result.plan
        clock = _stage(record, "plan", clock)
        record.things, record.groups = len(inventory.things), len(estate.groups)
        record.certificates, record.rules = len(inventory.certificates), len(inventory.rules)
        record.gaps = len(plan.gaps)
        record.needing_human = sum(1 for device in plan.devices if device.needs_human)
        _say(
            f"3/6 discovered {len(inventory.things)} things, {len(inventory.certificates)} "
            f"certificates, {len(inventory.rules)} rules -> {inventory_path}"
        )
        _say(f"    plan: {len(plan.devices)} devices, {len(plan.gaps)} gaps -> {written[0].parent}")
        settings = _daemon_settings(workdir)
        daemon = asyncio.create_task(
            run_daemon(cloud, settings, RunOptions(plan=written[0].parent / "migration-plan.json"))
        )
        try:
            await _mirror_stage(settings, daemon, len(inventory.things), record)
            clock = _stage(record, "initial sync", clock)
            record.latencies_ms = await _live_changes(cloud, daemon)
            clock = _stage(record, "live changes", clock)
            if fleet is not None:
                await _canary(settings, daemon, fleet.names)
                clock = _stage(record, "cutover", clock)
            report = workdir / "rehearsal.html"
            report.write_text(render_rehearsal(record), encoding="utf-8")
            _say(f"    summary: {report}")
            if options.stay_up:
                base = f"http://{settings.http.host}:{settings.http.port}"
                _say(f"    status page: {base}/   metrics: {base}/metrics")
                await _stay_up()
        finally:
            daemon.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await daemon
    log.info("rehearse.finished", workdir=str(workdir))
    return 0


def _daemon_settings(workdir: Path) -> Settings:
    with socket.socket() as probe:  # a free port, so a second rehearsal does not collide
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return Settings(
        store={"dsn": f"sqlite:///{workdir / 'bridge.db'}"},
        http={"port": port},
        mirror={"aws_rate_scale": 0},
        cutover={"poll_interval": 0.5},
        iothub={"import_threshold": 200},
    )


def _stage(record: Rehearsal, name: str, since: float) -> float:
    """Record how long a stage took; returns the time the next one starts."""
    now = time.monotonic()
    record.stages.append((name, now - since))
    return now


async def _mirror_stage(
    settings: Settings, daemon: asyncio.Task[ExitCode], things: int, record: Rehearsal
) -> None:
    started = time.monotonic()
    while True:
        if daemon.done():
            code = daemon.result()  # raises what stopped it, or says how it ended
            raise SimulatorError(
                f"the mirror daemon stopped during the initial sync (exit code {int(code)})"
            )
        try:
            status = await read_status(settings.store.dsn)
        except StoreError:  # the daemon has not created its store yet
            await asyncio.sleep(0.2)
            continue
        devices = status["devices"]
        failed = devices["failed"]
        waiting = devices["discovered"] + devices["provisioning"]
        on_azure = status["total"] - failed - waiting - devices["deleted"]
        record.progress.append((time.monotonic() - started, on_azure, failed, waiting))
        if (
            status["devices"]["mirrored"] + status["devices"]["failed"] >= things
            and not status["outbox"]
        ):
            break
        await asyncio.sleep(0.5)
    seconds = time.monotonic() - started
    _say(
        f"4/6 mirror: initial sync of {things} devices in {seconds:.1f} s; "
        f"{status['devices']['mirrored']} mirrored, {status['devices']['failed']} failed"
    )


async def _live_changes(cloud: CloudSettings, daemon: asyncio.Task[ExitCode]) -> list[float]:
    """Change a few shadows on AWS and time each until IoT Hub's twin shows it."""
    async with (
        open_clients(cloud, RateLimiter(scale=0), concurrency=4) as (iot, data),
        IotHubService(
            cloud.IOTHUB_CONNECTION_STRING.get_secret_value()
            if cloud.IOTHUB_CONNECTION_STRING
            else "",
            ca_bundle=cloud.IOTHUB_ROOT_CA,
        ) as hub,
    ):
        listed = await iot.call("list_things", maxResults=5)
        names = [thing["thingName"] for thing in listed["things"]]
        latencies = []
        for name in names:
            marker = secrets.token_hex(4)
            body = json.dumps({"state": {"desired": {"rehearsal": marker}}}).encode()
            sent = time.monotonic()
            await data.call("update_thing_shadow", thingName=name, payload=body)
            while (await hub.get_twin(name)).desired.get("rehearsal") != marker:
                if daemon.done() or time.monotonic() - sent > 30:
                    raise SimulatorError(f"the change to {name} did not reach IoT Hub in 30 s")
                await asyncio.sleep(0.01)
            latencies.append((time.monotonic() - sent) * 1000)
    _say(
        f"5/6 live: {len(latencies)} shadow changes reached their twins in "
        f"{min(latencies):.0f}-{max(latencies):.0f} ms (AWS API call to twin read)"
    )
    return latencies


async def _canary(settings: Settings, daemon: asyncio.Task[ExitCode], names: list[str]) -> None:
    """Cut the fleet over in one canary wave and print how each device ended."""
    dsn = settings.store.dsn
    started = time.monotonic()
    async with open_store(dsn) as store:
        await plan_wave(store, "canary", devices=names, group=None, deadline_seconds=60)
        await set_wave_state(store, "canary", "start")
        while True:
            if daemon.done():
                daemon.result()
                raise SimulatorError("the daemon stopped during the canary wave")
            [wave] = [w for w in await wave_status(store) if w["name"] == "canary"]
            if wave["state"] in {"done", "aborted"}:
                break
            if time.monotonic() - started > 180:
                raise SimulatorError("the canary wave did not finish in 180 s")
            await asyncio.sleep(0.5)
    _say(
        f"6/6 cutover: canary wave {wave['state']} in {time.monotonic() - started:.1f} s: "
        f"{wave['reason']}"
    )
    for device in wave["devices"]:
        _say(f"    {device['device_id']:<12} {device['state']:<12} {device['reason']}")


async def _stay_up() -> None:
    _say("stand-ins and the mirror stay up for a look around; press Ctrl-C to stop")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
