"""Cutover at fleet scale: one wave over `--devices` devices, timed and verified.

Runs on the local stand-ins (in this process) with the simulated fleet (each device its
own AWS certificate, the reference migration agent, a reading every `--interval` seconds,
a shadow report every `--shadow-interval` seconds and desired changes made on AWS every
`--desired-interval` seconds; sharded over `--fleet-processes` child processes, by default
one per 125 devices), and the daemon (`iot-bridge run`: mirror, relay, cutover) as a child
process, so its CPU and memory are its own. One wave holds every device, rolled out by AWS
IoT Jobs at `--per-minute` (the configured rate is the baseline the achieved rate is
compared with).

Prints: devices cut over per minute against the configured rollout rate (from the first to
the last verdict); each device's telemetry gap at cutover (the silence between the last
reading AWS took and the first Azure took, beyond the reading interval; p50, p99, max);
readings lost and duplicated on the way to Azure, judged by an MQTT subscriber on AWS and
Microsoft's EventHubConsumerClient on IoT Hub (`bridge_sim.verify`); the daemon's CPU
(cores, and seconds per device cut over) and its peak and steady RSS, before and during
the wave.

    .venv/bin/python bench/cutover.py --devices 1000 --per-minute 500 --interval 10
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _mirror_rig import CpuMeter, Daemon

from bridge.config import Settings
from bridge_sim.fleet import Fleet
from bridge_sim.observe import AwsTap, AzureTap
from bridge_sim.rehearse import run_waves, until_ready, verify_fleet
from bridge_sim.stack import sim_stack
from bridge_sim.verify import ON_AZURE, Verification


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=200)
    parser.add_argument("--per-minute", type=int, default=300, help="AWS rollout rate")
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between readings")
    parser.add_argument("--deadline", type=int, default=120)
    parser.add_argument("--fleet-processes", type=int, default=None, help="default: by size")
    parser.add_argument("--shadow-interval", type=float, default=60.0, help="0: no reports")
    parser.add_argument("--desired-interval", type=float, default=1.0, help="0: no changes")
    parser.add_argument("--report", type=Path, help="write the verification (JSON) here")
    return parser.parse_args()


async def main(args: argparse.Namespace) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="bench-cutover-"))
    try:
        await _run(args, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


async def _run(args: argparse.Namespace, workdir: Path) -> None:
    print(f"cutover bench: {args.devices} devices, rollout {args.per_minute}/min", flush=True)
    async with sim_stack(workdir / "sim") as stack:
        env = stack.env()
        begun = time.monotonic()
        async with (
            AwsTap(env["SIM_AWS_MQTT_PLAIN"]) as aws_tap,
            AzureTap(env) as azure_tap,
            Fleet(
                env,
                workdir / "fleet",
                devices=args.devices,
                prefix="fleet",
                telemetry_interval=args.interval,
                telemetry_at_start=False,
                shadow_interval=args.shadow_interval,
                desired_interval=args.desired_interval,
                processes=args.fleet_processes,
            ) as fleet,
        ):
            daemon = Daemon(
                workdir,
                {k: v for k, v in env.items() if not k.startswith("SIM_")},
                "cutover",
                extra={
                    "BRIDGE_RELAY__ENABLED": "true",
                    "BRIDGE_RELAY__TOPICS": '["dt/+=2"]',
                    "BRIDGE_CUTOVER__POLL_INTERVAL": "1",
                    # As in production: the fleet's reported state goes to the relay
                    # module twins, which the verification compares with the shadows.
                    "BRIDGE_IOTHUB__MIRROR_REPORTED": "true",
                },
            )
            print(
                f"fleet: {args.devices} devices in {fleet.processes} processes, up in "
                f"{time.monotonic() - begun:.0f} s",
                flush=True,
            )
            daemon.start()

            def alive() -> None:
                daemon.check_alive()
                fleet.check()

            settings = Settings(
                store={"dsn": f"sqlite:///{workdir / 'bridge-cutover.db'}"},
                http={"port": daemon.port},
            )
            try:
                await daemon.until_ready(600)
                await until_ready(settings, alive)
                fleet.start_telemetry()
                idle = CpuMeter(daemon.pid)
                await asyncio.sleep(10)  # the baseline: mirror and relay, no wave
                idle_cpu = idle.report()
                idle_rss = daemon.rss_mb()
                meter = CpuMeter(daemon.pid)
                started = time.monotonic()
                [wave] = await run_waves(
                    settings,
                    alive,
                    fleet.names,
                    deadline=args.deadline,
                    plan=lambda names: [("all", names)],
                    max_per_minute=args.per_minute,
                )
                wave_seconds = time.monotonic() - started
                wave_cpu = meter.report()
                cpu_seconds = meter._daemon() - meter.daemon
                await fleet.stop_telemetry()
                verification = await verify_fleet(
                    stack,
                    dsn=settings.store.dsn,
                    relay_module=settings.iothub.relay_module,
                    fleet=fleet,
                    aws_tap=aws_tap,
                    azure_tap=azure_tap,
                    interval=args.interval,
                )
                lost = _lost(fleet, verification)
            finally:
                await daemon.stop()
    if args.report:
        args.report.write_text(verification.to_json())
    _print(
        args,
        wave=wave,
        wave_seconds=wave_seconds,
        verification=verification,
        cpu=(idle_cpu, idle_rss, wave_cpu, cpu_seconds),
        daemon=daemon,
    )
    for line in lost:
        print(line)
    shadow = sum((d.shadow for d in fleet.devices.values()), Counter())
    print(
        f"shadow churn: {shadow['reported/aws']} reports on AWS and {shadow['reported/azure']} "
        f"on Azure twins; {fleet.desired_changes} desired changes made on AWS, answered "
        f"{shadow['answered/aws']} times on AWS and {shadow['answered/azure']} on Azure; "
        f"{shadow['failed']} attempts between clouds"
    )


def _lost(fleet: Fleet, verification: Verification) -> list[str]:
    """Each lost reading: which cloud took it, and when against the device's first reading
    on Azure (a loss at the switch points at the hand-over between relay and device)."""
    lines = []
    for check in verification.devices:
        readings = {r.seq: r for r in fleet.devices[check.device_id].readings}
        first = next((r.at for r in readings.values() if r.cloud == "azure"), None)
        for seq in check.lost:
            reading = readings[seq]
            when = f"{reading.at - first:+.3f} s" if first is not None else "(never on Azure)"
            lines.append(
                f"lost: {check.device_id} reading {seq}, taken by {reading.cloud}, "
                f"{when} from its first reading on Azure ({check.state})"
            )
    return lines


def _print(args, *, wave, wave_seconds, verification, cpu, daemon) -> None:
    idle_cpu, idle_rss, wave_cpu, cpu_seconds = cpu
    summary = verification.summary()
    moved = [d for d in verification.devices if d.state in ON_AZURE]
    gaps = summary["gap_at_cutover_seconds"]
    rate = 60 * len(moved) / wave_seconds if wave_seconds else 0.0
    print(f"wave: {wave['state']}: {wave['reason']} in {wave_seconds:.1f} s", flush=True)
    print(
        f"devices cut over per minute: {rate:.0f} (configured rollout {args.per_minute}/min; "
        f"{len(moved)} of {args.devices} on Azure)"
    )
    print(
        f"gap at cutover beyond the {args.interval:g} s interval: p50 "
        f"{gaps['p50']:.3f} s, p99 {gaps['p99']:.3f} s, max {gaps['max']:.3f} s"
    )
    print(
        f"readings: {summary['readings_acknowledged']} acknowledged, {summary['readings_lost']} "
        f"lost, {summary['duplicates_on_azure']} duplicated on Azure"
    )
    print(f"daemon before the wave: {idle_cpu}; RSS {idle_rss:.0f} MB")
    print(f"daemon during the wave: {wave_cpu}")
    per_device = cpu_seconds / len(moved) if moved else 0.0
    print(
        f"daemon CPU per device cut over: {per_device * 1000:.1f} ms; peak RSS "
        f"{daemon.peak_kb / 1024:.0f} MB"
    )
    print(f"verdict: {summary['verdict']}")
    if summary["devices_with_problems"]:
        problems = {d.device_id: d.problems for d in verification.devices if d.problems}
        print(f"problems: {dict(list(problems.items())[:10])}")


if __name__ == "__main__":
    asyncio.run(main(_arguments()))
