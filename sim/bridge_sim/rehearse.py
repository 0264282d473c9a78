"""`iot-bridge rehearse`: a migration window on the local stand-ins, start to finish.

Starts both stand-ins, builds a realistic estate in the AWS one and a simulated fleet
running the migration agent (a few devices told to misbehave), then runs what an operations
team runs against the real clouds: discovery, the plan, the daemon (`iot-bridge run`:
mirror, relay and cutover) with its initial sync and a few live changes timed end to end,
then the fleet cut over in growing waves through AWS IoT Jobs. It ends with a verification
report comparing AWS and Azure device by device (`bridge_sim.verify`), printed and written
beside its other outputs, and exits with the report's verdict.
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
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from bridge.aws.clients import open_clients
from bridge.aws.ratelimit import RateLimiter
from bridge.azure.hub import IotHubService
from bridge.config import CloudSettings, Settings
from bridge.core.machine import State
from bridge.core.milestones import cut_over_at, finalized_at
from bridge.core.store import Store, open_store
from bridge.cutover.operator import plan_wave, set_wave_state, wave_status
from bridge.cutover.report import cutover_report
from bridge.daemon.app import RunOptions, run_daemon
from bridge.daemon.status import read_status
from bridge.discover import DiscoveryOptions, discover
from bridge.errors import StoreError
from bridge.exit_codes import ExitCode
from bridge.logging import get_logger
from bridge.metrics import Metrics
from bridge.plan import PlanOptions, build_plan, write_plan
from bridge.reports.cutover import render_cutover_report
from bridge_sim.envfile import write_env_file
from bridge_sim.errors import SimulatorError
from bridge_sim.estate import Estate, EstateSpec, build_estate
from bridge_sim.fleet import Fleet
from bridge_sim.observe import AwsTap, AzureTap
from bridge_sim.parity import expected_twins
from bridge_sim.rehearsal_report import Rehearsal, render_rehearsal
from bridge_sim.routes_check import load_plan_routes, verify_routes
from bridge_sim.sensors import pick_devices, publish_readings
from bridge_sim.stack import SimStack, sim_stack
from bridge_sim.verify import Verification, check_device

__all__ = ["RehearsalOptions", "rehearse"]

log = get_logger("rehearse")


@dataclass(frozen=True)
class RehearsalOptions:
    """What to rehearse, and where to put what it produces."""

    things: int = 300
    workdir: Path = Path("rehearsal")
    env_file: Path = Path(".env.sim")
    stay_up: bool = False
    devices: int = 50  # simulated devices running the migration agent; 0 for none
    deadline: int = 30  # seconds a device of a wave has to show up on Azure
    interval: float = 1.0  # seconds between two readings of one device


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)  # noqa: T201 - the rehearsal talks to its operator


async def rehearse(options: RehearsalOptions) -> int:
    """Run the rehearsal; returns the process exit code (the verification's verdict)."""
    workdir = options.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    record = Rehearsal()
    clock = time.monotonic()
    # The stand-ins start empty, so the fleet's certificates and agent state and the
    # bridge's store of an earlier rehearsal describe a world that no longer exists.
    shutil.rmtree(workdir / "fleet", ignore_errors=True)
    for stale in workdir.glob("bridge.db*"):
        stale.unlink()
    async with sim_stack(workdir / "state") as stack, contextlib.AsyncExitStack() as resources:
        env = stack.env()
        write_env_file(options.env_file, env, header="Written by `iot-bridge rehearse`.")
        _say(f"1/7 stand-ins up; settings in {options.env_file}")
        clock = _stage(record, "stand-ins", clock)
        aws = stack.aws
        assert aws.shadows is not None
        estate = await asyncio.to_thread(
            build_estate, aws.moto, aws.shadows, EstateSpec(things=options.things)
        )
        _say(f"2/7 estate built: {len(estate.devices)} things in {len(estate.groups)} groups")
        fleet = None
        if options.devices:
            aws_tap = await resources.enter_async_context(AwsTap(env["SIM_AWS_MQTT_PLAIN"]))
            azure_tap = await resources.enter_async_context(AzureTap(env))
            fleet = await resources.enter_async_context(
                Fleet(
                    env,
                    workdir / "fleet",
                    devices=options.devices,
                    prefix="fleet",
                    misbehaving=misbehaving(options.devices),
                    telemetry_interval=options.interval,
                    # Readings start once the relay listens: what a device published before
                    # the bridge existed is AWS history, not something it could relay.
                    telemetry_at_start=False,
                    shadow_interval=SHADOW_INTERVAL,
                    desired_interval=DESIRED_INTERVAL,
                    operator_targets=_OperatorScope(_store_dsn(workdir)),
                )
            )
            _say(
                f"    fleet: {options.devices} devices running the migration agent, "
                f"{len(misbehaving(options.devices))} told to misbehave"
            )
        clock = _stage(record, "estate", clock)
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
            f"3/7 discovered {len(inventory.things)} things, {len(inventory.certificates)} "
            f"certificates, {len(inventory.rules)} rules -> {inventory_path}"
        )
        _say(f"    plan: {len(plan.devices)} devices, {len(plan.gaps)} gaps -> {written[0].parent}")
        await load_plan_routes(stack.iothub, written[0].parent)  # IoT Hub routes as planned
        settings = _daemon_settings(workdir)
        metrics = Metrics.create()
        daemon = asyncio.create_task(
            run_daemon(
                cloud,
                settings,
                RunOptions(plan=written[0].parent / "migration-plan.json"),
                metrics=metrics,
            )
        )
        code = ExitCode.OK
        try:
            await _mirror_stage(settings, daemon, len(inventory.things), record)
            clock = _stage(record, "initial sync", clock)
            record.latencies_ms = await _live_changes(cloud, daemon)
            await until_ready(settings, task_alive(daemon))  # the relay has subscribed
            await _sensor_readings(stack, estate, env, workdir, daemon)
            clock = _stage(record, "live changes", clock)
            if fleet is not None:
                await until_ready(settings, task_alive(daemon))
                fleet.start_telemetry()
                await run_waves(
                    settings,
                    both(task_alive(daemon), fleet.check),
                    fleet.names,
                    deadline=options.deadline,
                    relayed=lambda: _sample(metrics, "bridge_relay_messages_total", outcome="sent"),
                )
                clock = _stage(record, "cutover", clock)
                await _cutover_page(settings, workdir / "cutover.html")
                await until_finalized(settings, task_alive(daemon), fleet.names)
                clock = _stage(record, "soak and finalize", clock)
                await fleet.stop_telemetry()
                verification = await verify_fleet(
                    stack,
                    dsn=settings.store.dsn,
                    relay_module=settings.iothub.relay_module,
                    fleet=fleet,
                    aws_tap=aws_tap,
                    azure_tap=azure_tap,
                    interval=options.interval,
                    reverse=settings.reverse.enabled,
                )
                clock = _stage(record, "verification", clock)
                _record_cutover(record, verification)
                code = _report(verification, workdir)
                lines, routes_ok = await verify_routes(stack.iothub, plan.rules, inventory.rules)
                for line in lines:
                    _say(f"    {line}")
                code = code if routes_ok else ExitCode.VERIFY_FAILED
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
    log.info("rehearse.finished", workdir=str(workdir), exit_code=int(code))
    return int(code)


def misbehaving(devices: int) -> dict[int, list[str]]:
    """Which devices misbehave, and how: one of each fault, spread over the last wave.

    At most a third of that wave misbehaves, so the rehearsal shows rollbacks without
    tripping the wave's abort threshold; a small fleet gets fewer faults.
    """
    faults = ["reject", "azure-unreachable", "vanish", "ignore-jobs", "claim-success"]
    last = len(waves([str(i) for i in range(devices)])[-1][1])
    offset = devices - last
    if offset < CANARY:  # a fleet of one wave: the canary stays healthy
        return {}
    chosen = faults[: last // 3]
    step = max(1, last // max(1, len(chosen)))
    return {offset + i * step: [fault] for i, fault in enumerate(chosen)}


CANARY = 2  # devices in the first wave, none of them told to misbehave
SHADOW_INTERVAL = 5.0  # seconds between two shadow reports of a device
DESIRED_INTERVAL = 1.0  # seconds between two desired changes the operator makes on AWS
SOAK_SECONDS = 5.0  # on Azure before a device is finalized (days, in a real window)
# The operator stops changing a device on AWS this long before its finalizing, so the last
# change it made reaches the twin first: after it, the mirror leaves the twin alone.
OPERATOR_MARGIN = 2.0


def _store_dsn(workdir: Path) -> str:
    return f"sqlite:///{workdir / 'bridge.db'}"


class _OperatorScope:
    """The devices the rehearsal's operator may change on AWS now: none finalized, and
    none due to be within `OPERATOR_MARGIN` (the soak counts from the cutover verdict)."""

    def __init__(self, dsn: str) -> None:
        self._dsn = dsn

    async def __call__(self, names: list[str]) -> list[str]:
        async with open_store(self._dsn) as store:
            devices = await store.get_devices(names)
            keep = []
            for name in names:
                device = devices.get(name)
                if device is not None and device.state is State.FINALIZED:
                    continue
                verdict = await cut_over_at(store, name)
                if verdict is not None and time.time() - verdict > SOAK_SECONDS - OPERATOR_MARGIN:
                    continue
                keep.append(name)
            return keep


def waves(names: list[str]) -> list[tuple[str, list[str]]]:
    """The fleet in growing waves: a canary, then a quarter, then the rest."""
    canary, rest = names[:CANARY], names[CANARY:]
    quarter = max(1, len(names) // 4)
    planned = [("canary", canary), ("wave-2", rest[:quarter]), ("wave-3", rest[quarter:])]
    return [(name, members) for name, members in planned if members]


def _daemon_settings(workdir: Path) -> Settings:
    with socket.socket() as probe:  # a free port, so a second rehearsal does not collide
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return Settings(
        store={"dsn": _store_dsn(workdir)},
        http={"port": port},
        mirror={"aws_rate_scale": 0},
        relay={"enabled": True},
        # A soak of seconds, not days, so the rehearsal shows finalizing too.
        cutover={
            "poll_interval": 0.5,
            "soak_seconds": SOAK_SECONDS,
            "retire_certificates": True,
            # Both arrival signals: the fleet's telemetry rate is low enough to read it all.
            "connection_events": True,
        },
        iothub={"import_threshold": 200},
        # After cutover, what the moved fleet sends on Azure goes back to its AWS topic (the
        # agent stamps it as awsTopic; the template is for devices that do not).
        reverse={"enabled": True, "topic_template": "dt/{device}"},
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
        f"4/7 mirror: initial sync of {things} devices in {seconds:.1f} s; "
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
        f"5/7 live: {len(latencies)} shadow changes reached their twins in "
        f"{min(latencies):.0f}-{max(latencies):.0f} ms (AWS API call to twin read)"
    )
    return latencies


async def _sensor_readings(
    stack: Any,
    estate: Estate,
    env: Mapping[str, str],
    workdir: Path,
    daemon: asyncio.Task[ExitCode],
) -> None:
    """A few estate devices publish as themselves, so the estate's routes carry traffic."""
    devices = pick_devices(estate)
    readings = await publish_readings(
        devices, env, workdir / "sensors", stack.iothub.events, task_alive(daemon)
    )
    _say(
        f"    sensors: {readings.total} readings from {len(devices)} estate devices "
        f"({len(devices)} of them for their rules to drop) relayed into IoT Hub"
    )


Alive = Callable[[], None]
"""Raises when the daemon has stopped (a task's result, a child process's exit code)."""


def both(first: Alive, second: Alive) -> Alive:
    """`Alive` for two things that must both be running (the daemon and the fleet)."""

    def check() -> None:
        first()
        second()

    return check


def task_alive(daemon: asyncio.Task[ExitCode]) -> Alive:
    """`Alive` for the daemon running as a task of this process."""

    def check() -> None:
        if daemon.done():
            code = daemon.result()  # raises what stopped it, or says how it ended
            raise SimulatorError(f"the daemon stopped (exit code {int(code)})")

    return check


async def run_waves(
    settings: Settings,
    alive: Alive,
    names: list[str],
    *,
    deadline: int,
    relayed: Callable[[], float] = lambda: 0.0,
    plan: Callable[[list[str]], list[tuple[str, list[str]]]] | None = None,
    max_per_minute: int = 60,
) -> list[dict[str, Any]]:
    """Cut the fleet over wave after wave, as an operator would, showing progress; returns
    every wave as `cutover status` shows it."""
    started = time.monotonic()
    finished = []
    async with open_store(settings.store.dsn) as store:
        for name, members in (plan or waves)(names):
            await plan_wave(
                store,
                name,
                devices=members,
                group=None,
                deadline_seconds=deadline,
                success_threshold=0.8,
                abort_threshold=0.5,
                max_per_minute=max_per_minute,
            )
            await set_wave_state(store, name, "start")
            limit = deadline + 120 + 60 * len(members) / max_per_minute
            wave = await _watch_wave(store, name, alive, relayed, limit)
            finished.append(wave)
            _say(f"    wave {name}: {wave['state']}: {wave['reason']}")
            if wave["state"] == "aborted":
                _say("    a wave aborted: the rest of the fleet stays on AWS")
                break
    _say(f"6/7 cutover: {len(names)} devices in {time.monotonic() - started:.1f} s")
    return finished


async def _watch_wave(
    store: Store, name: str, alive: Alive, relayed: Callable[[], float], limit: float
) -> dict[str, Any]:
    started = shown = time.monotonic()
    while True:
        alive()
        [wave] = [w for w in await wave_status(store) if w["name"] == name]
        if wave["state"] in {"done", "aborted"}:
            return wave
        now = time.monotonic()
        if now - started > limit:
            raise SimulatorError(f"wave {name} did not finish in {limit:.0f} s")
        if now - shown >= 5:
            shown = now
            states = Counter(row["state"] for row in wave["devices"])
            _say(
                f"    wave {name} {wave['state']} {now - started:.0f} s: "
                + ", ".join(f"{n} {s}" for s, n in sorted(states.items()))
                + f"; {int(relayed())} messages relayed so far"
            )
        await asyncio.sleep(0.5)


async def verify_fleet(
    stack: SimStack,
    *,
    dsn: str,
    relay_module: str,
    fleet: Fleet,
    aws_tap: AwsTap,
    azure_tap: AzureTap,
    interval: float,
    reverse: bool = False,
) -> Verification:
    """Wait for the last readings to land, then compare both clouds device by device."""
    await _settle(fleet, azure_tap)
    if reverse:
        async with open_store(dsn) as store:
            moments = {name: await finalized_at(store, name) for name in fleet.names}
        await _settle_back(fleet, azure_tap, aws_tap, moments)
    registry = stack.iothub.registry
    await _mirror_caught_up(dsn)
    async with open_store(dsn) as store:
        states = await store.get_devices(fleet.names)
        finalized = {name: await finalized_at(store, name) for name in fleet.names}
    expected, twins = await _twins(stack, fleet.names, relay_module, finalized)
    async with open_store(dsn) as store:
        reasons = {
            row["device_id"]: row["reason"] or ""
            for wave in await wave_status(store)
            for row in wave["devices"]
        }
    checks = []
    for name in fleet.names:
        device = fleet.devices[name]
        identity = registry.find(name) is not None
        actual = twins[name]
        state = states[name]
        checks.append(
            check_device(
                device_id=name,
                state=str(state.state),
                reason=reasons.get(name) or state.reason or "",
                faults=device.faults,
                readings=device.readings,
                azure=azure_tap.arrivals.get(name, []),
                aws=aws_tap.arrivals.get(name, []),
                identity_on_azure=identity,
                twin_matches=_same_twin(expected.get(name), actual, finalized[name]),
                interval=interval,
                reverse=reverse,
                finalized_at=finalized[name],
            )
        )
    return Verification(checks)


async def _mirror_caught_up(dsn: str, limit: float = 300.0) -> None:
    """Until the mirror has no change waiting: with shadow churn its last writes may still
    be queued when the readings have settled (it says how long that took)."""
    started = time.monotonic()
    async with open_store(dsn) as store:
        while True:
            waiting = await store.outbox_size()
            if not waiting or time.monotonic() - started > limit:
                break
            await asyncio.sleep(0.5)
    seconds = time.monotonic() - started
    if seconds >= 1 or waiting:
        _say(f"    the mirror caught up in {seconds:.0f} s ({waiting} changes still waiting)")


def _same_twin(expected: Any, actual: Any, finalized: float | None) -> bool:
    """Whether the twin holds what AWS does. For a finalized device, tags and desired state
    only: the relay module's twin (AWS's reported state, mirrored) is left as it was at the
    finalizing, while the reverse path may still carry the device's last reports to AWS."""
    if actual is None or expected is None:
        return False
    if finalized is not None:
        return bool(expected[:2] == actual[:2])
    return bool(expected == actual)


async def _twins(
    stack: SimStack,
    names: list[str],
    module: str,
    finalized: dict[str, float | None],
    attempts: int = 5,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(expected, actual) twins of the fleet, read again a few seconds later while they
    differ: with shadow churn the mirror and the reverse path may still be carrying the
    last changes when the readings have settled."""
    registry = stack.iothub.registry
    for attempt in range(attempts):
        expected = await asyncio.to_thread(expected_twins, stack.env(), "fleet-")
        actual = {
            name: _actual_twin(registry, name, module) if registry.find(name) else None
            for name in names
        }
        differ = [
            name
            for name in names
            if not _same_twin(expected.get(name), actual[name], finalized.get(name))
        ]
        if not differ or attempt == attempts - 1:
            break
        await asyncio.sleep(3)
    for name in differ:
        parts = ("tags.aws", "desired", "relay module reported")
        for part, want, have in zip(
            parts, expected.get(name) or (None,) * 3, actual[name] or (None,) * 3, strict=True
        ):
            if want != have:
                log.warning(
                    "rehearse.twin_differs", device_id=name, part=part, aws=want, azure=have
                )
    return expected, actual


def _actual_twin(registry: Any, name: str, module: str) -> tuple[Any, Any, Any]:
    """(tags.aws, desired, relay module reported) as IoT Hub holds them."""
    twin = registry.twin(name)
    desired = {k: v for k, v in twin["properties"]["desired"].items() if not k.startswith("$")}
    try:
        module_twin = registry.twin(name, module)
    except Exception:
        return ((twin.get("tags") or {}).get("aws"), desired, "relay module missing")
    reported = module_twin["properties"]["reported"]
    return (
        (twin.get("tags") or {}).get("aws"),
        desired,
        {k: v for k, v in reported.items() if not k.startswith("$")},
    )


async def _settle(fleet: Fleet, azure_tap: AzureTap) -> None:
    """Until every acknowledged reading is on Azure, or nothing new arrives for a while."""
    wanted = {
        name: {r.seq for r in device.readings if r.cloud in {"aws", "azure"}}
        for name, device in fleet.devices.items()
    }

    def covered() -> bool:
        return all(
            seqs <= {a.seq for a in azure_tap.arrivals.get(name, [])}
            for name, seqs in wanted.items()
        )

    await _until_covered(covered, lambda: sum(len(v) for v in azure_tap.arrivals.values()))


async def _settle_back(
    fleet: Fleet, azure_tap: AzureTap, aws_tap: AwsTap, finalized: dict[str, float | None]
) -> None:
    """Until what devices sent to Azure is back on AWS, or nothing new arrives for a while:
    what IoT Hub took before each device's finalizing (what came after never comes back)."""

    def back() -> set[tuple[str, int]]:
        return {(name, a.seq) for name in fleet.names for a in aws_tap.arrivals.get(name, [])}

    def due(name: str, enqueued_at: float) -> bool:
        at = finalized.get(name)
        return at is None or enqueued_at < at

    def covered() -> bool:
        direct = {
            (name, a.seq)
            for name in fleet.names
            for a in azure_tap.arrivals.get(name, [])
            if a.via == "device" and due(name, a.enqueued_at)
        }
        return direct <= back()

    await _until_covered(covered, lambda: len(back()))


async def _until_covered(
    covered: Callable[[], bool], progress: Callable[[], int], quiet: float = 10.0
) -> None:
    """Until `covered()`, or `progress()` stayed the same for `quiet` seconds."""
    last, last_change = -1, time.monotonic()
    while time.monotonic() - last_change < quiet:
        if covered():
            return
        if (now := progress()) != last:
            last, last_change = now, time.monotonic()
        await asyncio.sleep(0.5)


async def until_finalized(settings: Settings, alive: Alive, names: list[str]) -> None:
    """Wait out the soak: every device still on Azure gets finalized."""
    started = time.monotonic()
    async with open_store(settings.store.dsn) as store:
        while True:
            alive()
            states = Counter(str(d.state) for d in (await store.get_devices(names)).values())
            if not states.get("cut_over"):
                break
            if time.monotonic() - started > SOAK_SECONDS + 120:
                raise SimulatorError(f"{states['cut_over']} devices were never finalized")
            await asyncio.sleep(0.5)
    _say(
        f"    soak: {states.get('finalized', 0)} devices finalized after {SOAK_SECONDS:.0f} s "
        "on Azure; their AWS certificates set INACTIVE, policies detached (reversible)"
    )


async def _cutover_page(settings: Settings, path: Path) -> None:
    """The waves as `iot-bridge cutover report` shows them, beside the other outputs."""
    async with open_store(settings.store.dsn) as store:
        waves = await cutover_report(store)
    page = render_cutover_report(waves, generated_at=datetime.now(UTC))
    await asyncio.to_thread(path.write_text, page, "utf-8")
    _say(f"    cutover report: {path}")


def _record_cutover(record: Rehearsal, verification: Verification) -> None:
    summary = verification.summary()
    record.cutover_gaps = [(d.device_id, d.gap_seconds) for d in verification.devices]
    record.final_states = dict(summary["states"])
    record.readings = summary["readings_acknowledged"]
    record.readings_lost = summary["readings_lost"]
    record.verdict = summary["verdict"]


def _sample(metrics: Metrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


def _report(verification: Verification, workdir: Path) -> ExitCode:
    text = verification.render_text()
    (workdir / "verification.txt").write_text(text + "\n", encoding="utf-8")
    (workdir / "verification.json").write_text(verification.to_json(), encoding="utf-8")
    _say("7/7 verification, AWS against Azure, device by device:")
    _say(text)
    _say(f"    written to {workdir / 'verification.txt'} and verification.json")
    return ExitCode.OK if verification.ok else ExitCode.VERIFY_FAILED


async def until_ready(settings: Settings, alive: Alive) -> None:
    """Wait until the daemon's /readyz says ready (the relay listens from then on)."""
    url = f"http://{settings.http.host}:{settings.http.port}/readyz"
    async with aiohttp.ClientSession() as session:
        while True:
            alive()
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(url) as answer:
                    if answer.status == 200:
                        return
            await asyncio.sleep(0.2)


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
