"""`iot-bridge run` end to end: initial sync, quota saturation, live latency and memory.

Everything runs on the local stand-ins (`bridge_sim.stack.sim_stack`, in this process:
moto and the glue for AWS with mosquitto as a child, the IoT Hub emulator with Azurite),
and the daemon runs as a child process (`python -m bridge run --env-file F`), so its CPU
and RSS are its own. The emulator is instrumented in this process: every quota charge
(granted or refused, per operation class) and every twin PUT carrying a benchmark sequence
number (and every relay module's reported patch) is stamped with this process's monotonic
clock. Reported-state mirroring (relay module connections) is off except in 1e, which
measures what it adds.

1. Initial sync of `--things` things (the realistic estate of `bridge_sim.estate`: types,
   a four-level group hierarchy, certificates, classic shadows, 30% named shadows), timed
   from the daemon's start until the emulator holds every device with its relay module and
   twin (the independent "every device mirrored" state; the daemon's own store gauges are
   printed next to it):
   a. quotas off (emulator unthrottled, no `iothub.tier`) with the import job the daemon
      uses for large fleets, and the baseline in the same run: import jobs off
      (`import_threshold` above the fleet), i.e. 100-device bulk registry calls and one
      module PUT per device;
   b. S1 quotas on the emulator and `BRIDGE_IOTHUB__TIER=S1` (import job);
   c. the same with S3;
   d. with that daemon still running: shadow changes at 1.6 times the tier's twin-update
      quota for `--saturate-seconds` (as AWS IoT's shadow service publishes them, see 2b),
      then (S1) things created live through the control plane faster than the
      identity-registry quota for `--identity-seconds` (two operations each: device and
      relay module). Achieved rate = granted charges of the class from the first grant
      past a warm-up to the last grant while the load runs, over the time between those
      two grants (a paced client's grants arrive as tokens accrue, so this is its
      sustained rate); 429s are the hub's refusals meanwhile;
   e. (`--reported`, about ten minutes more) the 1a sync with reported-state mirroring on,
      the setting's default: one relay module connection per device writes its AWS
      reported state; the time until everything settled, the reported writes per second
      (from the emulator's stamps of each module's reported patch) and the hub operations
      each costs, hence what S1 and S3 allow.
2. Live event-to-twin latency, quotas off, on the 1a daemon: `--rate` shadow changes per
   second for `--latency-seconds`, round-robin over every thing, each setting
   `desired.bench_seq`; end to end runs from the publish to the emulator applying the twin
   PUT that carries that sequence number. Twice:
   a. as devices do: update requests on `$aws/things/<name>/shadow/update` (plain loopback
      listener), which the stand-in's shadow service answers with the `update/documents`
      message the bridge reads; a subscriber of its own splits the time at that message;
   b. as AWS IoT's shadow service publishes: the bench sends those `update/documents`
      messages itself (versions above any the stand-in gave out), because the stand-in's
      service answers fewer than 200 updates a second on this machine (2a shows it).
   The daemon's own receipt-to-write lag comes from its `bridge_event_lag_seconds`
   histogram (scraped before and after, interpolated within buckets as Prometheus'
   histogram_quantile does). CPU is the daemon's and this process's while publishing.
3. Resident memory: an idle daemon with 0 devices (the baseline, before any estate
   exists); then the estate grown to `--memory-things` (the extra things plain, with a
   classic shadow) and a daemon that syncs them all and runs live under `--rate` shadow
   changes per second (as in 2b): peak RSS (VmHWM, the kernel's high-water mark) and
   steady RSS (median of /proc samples while live).

The default run takes about 25 minutes for parts 1 and 2 on two cores, and part 3 at
100,000 devices about as long again (its initial read dominates; `--memory-things 0` skips
it).

    .venv/bin/python bench/mirror.py [--reported]
    .venv/bin/python bench/mirror.py --things 2000 --memory-things 5000 --saturate-seconds 20
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bridge.logging import configure_logging

# Module loggers bind at import, so quieten them before the stand-ins' modules load.
configure_logging("WARNING")

from _mirror_rig import (  # noqa: E402 - the instruments, next to this file
    POLL,
    CpuMeter,
    Daemon,
    DocumentsTap,
    HubProbe,
    ShadowLoad,
    ThingCreator,
    duration,
    grow_estate,
    histogram_quantile,
    percentile,
    principal_table_deferred,
)

from bridge.azure.quotas import Operation, Tier, rate_for  # noqa: E402
from bridge_sim.estate import EstateSpec, build_estate  # noqa: E402
from bridge_sim.stack import SimStack, sim_stack  # noqa: E402

NO_IMPORT = 10**9  # an import threshold no fleet reaches: bulk registry calls only
SATURATE_FACTOR = 1.6  # shadow updates offered per second, as a multiple of the twin quota
IDENTITY_THINGS_PER_S = 4.0  # live creations offered in the identity test (8 operations/s)
IDENTITY_WARMUP = 25.0  # seconds for the identity bucket's first minute's worth to go
TWIN_WARMUP = 5.0
QUANTILES = (0.5, 0.95, 0.99)
PROGRESS = 60.0  # seconds between progress lines while waiting


@dataclass
class Bench:
    """What every scenario shares."""

    stack: SimStack
    probe: HubProbe
    workdir: Path
    args: argparse.Namespace
    names: list[str] = field(default_factory=list)  # every thing in the AWS estate
    daemons: list[Daemon] = field(default_factory=list)
    summary: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        env = self.stack.env()
        env.pop("SIM_AWS_MQTT_PLAIN")
        return env

    @property
    def plain(self) -> str:
        return self.stack.env()["SIM_AWS_MQTT_PLAIN"]

    def daemon(self, label: str, **kwargs: Any) -> Daemon:
        daemon = Daemon(self.workdir, self.env, label, **kwargs)
        self.daemons.append(daemon)
        return daemon

    def load(self, rate: float, seconds: float, **kwargs: Any) -> ShadowLoad:
        return ShadowLoad(self.plain, self.names, rate, seconds, **kwargs)

    def note(self, what: str, figure: str, aim: str = "") -> None:
        self.summary.append((what, figure, aim))


@dataclass
class Sync:
    """One initial sync, timed from the daemon's start."""

    label: str
    devices: int
    mirrored_s: float  # the emulator holds every device with its relay module and twin
    ready_s: float  # /readyz: every device of the initial sync on IoT Hub
    settled_s: float  # then until its gauges show nothing left to do (0: not waited for)
    jobs: tuple[int, float]  # import jobs and their summed run time
    calls: dict[str, int]
    states: dict[str, int]
    peak_rss_mb: float  # VmHWM once settled

    @property
    def per_s(self) -> float:
        return self.devices / self.mirrored_s

    def show(self) -> None:
        jobs, jobs_s = self.jobs
        print(
            f"  {self.label:<24} devices={self.devices}  all_mirrored_s={self.mirrored_s:.1f}  "
            f"devices_per_s={self.per_s:.1f}  ready_s={self.ready_s:.1f}  "
            f"settled_s=+{self.settled_s:.1f}  import_jobs={jobs} ({jobs_s:.1f} s)  "
            f"peak_rss_mb={self.peak_rss_mb:.0f}",
            flush=True,
        )
        calls = "  ".join(f"{k}={v}" for k, v in self.calls.items())
        print(f"  {'':<24} hub calls: {calls}", flush=True)
        print(f"  {'':<24} daemon's store: {self.states}", flush=True)


async def until_mirrored(bench: Bench, daemon: Daemon, devices: int) -> float:
    """Seconds from the daemon's start until the emulator holds every device, mirrored."""
    deadline = time.monotonic() + bench.args.sync_timeout
    shown, poll = time.monotonic(), max(POLL, devices / 50_000)  # a count takes a while
    while (done := bench.probe.mirrored()) < devices:
        daemon.check_alive()
        now = time.monotonic()
        if now > deadline:
            raise SystemExit(f"{daemon.label}: {done} of {devices} mirrored in time")
        if now - shown >= PROGRESS:
            shown = now
            print(
                f"  ... {done}/{devices} on the hub after {now - daemon.started:.0f} s, "
                f"daemon rss_mb={daemon.rss_mb():.0f}",
                flush=True,
            )
        await asyncio.sleep(poll)
    return time.monotonic() - daemon.started


async def initial_sync(
    bench: Bench,
    label: str,
    *,
    tier: Tier | None = None,
    import_jobs: bool = True,
    reported: bool = False,
) -> tuple[Sync, Daemon]:
    """Start a daemon on an empty hub and time the fleet into it; leave the daemon running."""
    devices = len(bench.names)
    bench.probe.reset(tier)
    threshold = min(1000, devices) if import_jobs else NO_IMPORT
    daemon = bench.daemon(label, tier=tier, import_threshold=threshold, reported=reported)
    since = time.time()
    daemon.start()
    mirrored_s = await until_mirrored(bench, daemon, devices)
    ready_s = await daemon.until_ready(timeout=bench.args.sync_timeout)
    settled_s = await daemon.until_settled(devices, timeout=bench.args.sync_timeout)
    probe = bench.probe
    calls = {
        "import jobs": probe.requests(route="/jobs/create", method="POST", status=200),
        "bulk POST /devices": probe.requests(route="/devices", method="POST"),
        "module PUTs": probe.requests(
            route="/devices/{device_id}/modules/{module_id}", method="PUT"
        ),
        "twin PUTs": probe.requests(route="/twins/{device_id}", method="PUT"),
        "429s": probe.requests(status=429),
    }
    sync = Sync(
        label,
        devices,
        mirrored_s,
        ready_s,
        settled_s,
        probe.jobs(since),
        calls,
        await daemon.states(),
        daemon.hwm_mb(),
    )
    sync.show()
    return sync, daemon


def quantiles(samples: list[float]) -> str:
    """p50/p95/p99 (and the max) of seconds, in milliseconds."""
    if not samples:
        return "n/a"
    shown = "  ".join(f"p{round(q * 100)}={percentile(samples, q) * 1000:7.1f}" for q in QUANTILES)
    return f"{shown}  max={max(samples) * 1000:7.1f} ms"


async def latency_run(bench: Bench, daemon: Daemon, *, as_service: bool) -> list[float]:
    """One paced run; the end-to-end lags of the changes that reached the twin."""
    rate, seconds = bench.args.rate, bench.args.latency_seconds
    tap = None if as_service else DocumentsTap(bench.plain)
    before = await daemon.metrics()
    load = bench.load(rate, seconds, as_service=as_service)
    cpu = CpuMeter(daemon.pid)
    try:
        await load.run_to_end()
        used = cpu.report()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if all(seq in bench.probe.written for seq, _ in load.sent):
                break
            await asyncio.sleep(0.2)
    finally:
        if tap is not None:
            tap.close()
    await asyncio.sleep(6)  # one export period: the daemon's histogram includes the run
    after = await daemon.metrics()
    written = bench.probe.written
    lags = [written[s] - t for s, t in load.sent if s in written]
    sent_rate = (len(load.sent) - 1) / (load.sent[-1][1] - load.sent[0][1])
    print(
        f"  published {len(load.sent)} at {sent_rate:.0f}/s over {len(bench.names)} things; "
        f"{len(lags)} reached the twin, {len(load.sent) - len(lags)} had not 30 s later",
        flush=True,
    )
    print(f"  while publishing, {used}")
    print(f"  {'publish -> twin PUT applied':<44} {quantiles(lags)}")
    if tap is not None:
        docs = tap.seen
        service = [docs[s] - t for s, t in load.sent if s in docs]
        bridge = [written[s] - docs[s] for s, _ in load.sent if s in docs and s in written]
        done = len(service) / (max(docs.values()) - load.sent[0][1]) if docs else 0.0
        print(f"  {'  of which the stand-in (-> documents out)':<44} {quantiles(service)}")
        print(f"  {'  and the bridge (documents -> twin)':<44} {quantiles(bridge)}")
        print(f"  the stand-in's shadow service answered {done:.0f} updates/s")
    buckets = sorted(
        (float(dict(labels)["le"]), value - before.get((name, labels), 0.0))
        for (name, labels), value in after.items()
        if name == "bridge_event_lag_seconds_bucket"
    )
    own = {q: histogram_quantile(q, buckets) for q in QUANTILES}
    shown = "  ".join(
        f"p{round(q * 100)}={'n/a' if v is None else f'{v * 1000:7.1f}'}" for q, v in own.items()
    )
    print(f"  {'daemon: receipt -> write (its histogram)':<44} {shown} ms", flush=True)
    return lags


async def latency(bench: Bench, daemon: Daemon) -> None:
    """2: `--rate` shadow changes per second, publish to twin write, quotas off."""
    rate = bench.args.rate
    print(f"\n2. live event-to-twin latency at {rate:.0f} shadow changes/s, quotas off", flush=True)
    print("  a. as devices do: update requests through the stand-in's shadow service")
    lags = await latency_run(bench, daemon, as_service=False)
    bench.note(
        f"2a latency at {rate:.0f}/s from device publish, p50/p99",
        f"{percentile(lags, 0.5) * 1000:.0f} / {percentile(lags, 0.99) * 1000:.0f} ms",
        "p99 < 250 ms",
    )
    await daemon.until_settled(len(bench.names), timeout=bench.args.sync_timeout)
    print("  b. as AWS IoT's shadow service publishes: update/documents straight to the broker")
    lags = await latency_run(bench, daemon, as_service=True)
    bench.note(
        f"2b latency at {rate:.0f}/s from documents, p50/p95/p99",
        " / ".join(f"{percentile(lags, q) * 1000:.0f}" for q in QUANTILES) + " ms",
        "p99 < 250 ms",
    )


async def saturate_twins(bench: Bench, daemon: Daemon, tier: Tier) -> None:
    """1d: more shadow updates than the twin-update quota; achieved rate against it."""
    quota = rate_for(tier, 1, Operation.TWIN_UPDATE).per_second
    offered, seconds = quota * SATURATE_FACTOR, bench.args.saturate_seconds
    put_429 = {"route": "/twins/{device_id}", "method": "PUT", "status": 429}
    errors_before = bench.probe.requests(**put_429)
    load = bench.load(offered, seconds, offset=len(bench.names) // 2, as_service=True)
    begin, cpu = time.monotonic(), CpuMeter(daemon.pid)
    await load.run_to_end()
    end = time.monotonic()
    daemon.check_alive()
    achieved = bench.probe.steady_rate(Operation.TWIN_UPDATE, begin + TWIN_WARMUP, end)
    errors = bench.probe.requests(**put_429) - errors_before
    backlog = sum(1 for seq, _ in load.sent if seq not in bench.probe.written)
    share = achieved / quota
    print(
        f"  twin updates: quota={quota:.0f}/s  offered={offered:.0f} shadow changes/s for "
        f"{seconds:.0f} s  achieved={achieved:.1f}/s = {share:.1%} of quota  429s={errors}  "
        f"changes not yet written when the load stopped={backlog}\n  {cpu.report()}",
        flush=True,
    )
    bench.note(
        f"1d twin updates at {tier}, achieved/quota",
        f"{achieved:.1f}/{quota:.0f} per s = {share:.1%}, 429s={errors}",
        ">= 95%, no 429",
    )
    drained = await daemon.until_settled(len(bench.names), timeout=bench.args.sync_timeout)
    print(f"  backlog drained {drained:.0f} s after the load stopped", flush=True)


async def saturate_identity(bench: Bench, daemon: Daemon, tier: Tier) -> None:
    """1d: things created live faster than the identity-registry quota; achieved rate."""
    quota = rate_for(tier, 1, Operation.IDENTITY_REGISTRY).per_second
    seconds = bench.args.identity_seconds
    creator = ThingCreator(bench.env, f"live-{tier.lower()}-", IDENTITY_THINGS_PER_S, seconds)
    errors_before = bench.probe.requests(status=429)
    devices_before = bench.probe.mirrored()
    begin = time.monotonic()
    creator.start()
    await asyncio.to_thread(creator.join)
    end = time.monotonic()
    if creator.error is not None:
        raise creator.error
    daemon.check_alive()
    bench.names.extend(creator.names)  # part of the estate from now on
    achieved = bench.probe.steady_rate(Operation.IDENTITY_REGISTRY, begin + IDENTITY_WARMUP, end)
    errors = bench.probe.requests(status=429) - errors_before
    on_hub = bench.probe.mirrored() - devices_before
    share = achieved / quota
    print(
        f"  identity registry: quota={quota * 60:.0f}/min  offered="
        f"{IDENTITY_THINGS_PER_S * 2 * 60:.0f}/min ({IDENTITY_THINGS_PER_S:g} new things/s, "
        f"2 operations each) for {seconds:.0f} s  achieved={achieved * 60:.1f}/min = "
        f"{share:.1%} of quota (after a {IDENTITY_WARMUP:.0f} s warm-up)  429s={errors}  "
        f"things created: {len(creator.names)} on AWS, {on_hub} on the hub",
        flush=True,
    )
    bench.note(
        f"1d identity registry at {tier}, achieved/quota",
        f"{achieved * 60:.1f}/{quota * 60:.0f} per min = {share:.1%}, 429s={errors}",
        ">= 95%, no 429",
    )


async def reported_cost(bench: Bench) -> None:
    """1e: the 1a sync with reported-state mirroring on, and what its writes cost."""
    print("\n1e. the 1a sync with reported-state mirroring on (relay module twins)", flush=True)
    sync, daemon = await initial_sync(bench, "quotas off, reported on", reported=True)
    await daemon.stop()
    probe, stamps = bench.probe, bench.probe.reported_at
    writes = len(stamps)
    if writes < 2:
        print(f"  {writes} reported writes: nothing to measure")
        return
    rate = (writes - 1) / (stamps[-1] - stamps[0])
    print(
        f"  reported writes: {writes} (things with reported state), {rate:.1f}/s from the "
        f"first to the last; everything settled {sync.mirrored_s + sync.settled_s:.0f} s "
        f"after start, against 1a's reported-off sync above",
        flush=True,
    )
    costs = {
        Operation.IDENTITY_REGISTRY: probe.requests(
            route="/devices/{device_id}/modules/{module_id}", method="GET"
        ),
        **{
            op: probe.charges(op, 0, math.inf)
            for op in (Operation.NEW_CONNECTION, Operation.TWIN_READ, Operation.TWIN_UPDATE)
        },
    }
    per_write = {op: n / writes for op, n in costs.items()}
    spent = "  ".join(f"{op.value}={n:.2f}" for op, n in per_write.items())
    print(f"  hub operations per reported write: {spent}", flush=True)
    bench.note("1e initial sync, reported mirroring on", f"{sync.per_s:.0f} devices/s")
    bench.note("1e reported writes, quotas off (measured)", f"{rate:.1f} devices/s")
    for tier in ("S1", "S3"):
        bounds = {
            op: rate_for(tier, 1, op).per_second / n for op, n in per_write.items() if n > 0.01
        }
        op, bound = min(bounds.items(), key=lambda item: item[1])
        print(
            f"  at {tier} (1 unit) the {op.value} quota bounds reported writes to "
            f"{bound:.2f} devices/s: {writes} in {duration(writes / bound)}",
            flush=True,
        )
        bench.note(
            f"1e reported writes at {tier} (bound by {op.value})",
            f"{bound:.2f} devices/s, {duration(writes / bound)} for {writes}",
        )


async def sync_scenarios(bench: Bench) -> None:
    """1a with 2 on the same daemon, the 1a baseline, per tier 1b/1c with 1d, then 1e."""
    devices = len(bench.names)
    print(f"\n1a. initial sync of {devices} things, quotas off, import job", flush=True)
    sync, daemon = await initial_sync(bench, "quotas off, import job")
    bench.note("1a initial sync, quotas off, import job", f"{sync.per_s:.0f} devices/s")
    await latency(bench, daemon)
    await daemon.stop()

    print("\n1a. baseline: the same without import jobs (bulk registry calls)", flush=True)
    sync, daemon = await initial_sync(bench, "quotas off, bulk calls", import_jobs=False)
    bench.note("1a baseline: quotas off, bulk calls", f"{sync.per_s:.0f} devices/s")
    await daemon.stop()

    for tier in bench.args.tiers:
        part = {"S1": "1b", "S3": "1c"}.get(tier, "1b/c")
        print(f"\n{part}. initial sync with {tier} quotas on the hub and in the daemon", flush=True)
        sync, daemon = await initial_sync(bench, f"{tier}, import job", tier=tier)
        bench.note(f"{part} initial sync at {tier}, import job", f"{sync.per_s:.0f} devices/s")
        per_device = 2 / rate_for(tier, 1, Operation.IDENTITY_REGISTRY).per_second
        print(
            f"  (by bulk calls instead, {tier} allows {60 / per_device:.0f} devices/min at two "
            f"identity operations each: {sync.devices} in {duration(sync.devices * per_device)})"
        )
        print(f"\n1d. {tier}: the daemon against the quota of each class it uses", flush=True)
        await saturate_twins(bench, daemon, tier)
        if tier == "S1" and bench.args.identity_seconds > 0:
            await saturate_identity(bench, daemon, tier)
        await daemon.stop()

    if bench.args.reported:
        await reported_cost(bench)


async def idle_baseline(bench: Bench) -> None:
    """3: RSS of a daemon with nothing to track (no thing on AWS yet), once it is ready."""
    print(f"\n3. baseline: an idle daemon with 0 devices ({bench.args.idle_seconds:.0f} s)")
    daemon = bench.daemon("idle")
    daemon.start()
    await daemon.until_ready(timeout=120)
    await asyncio.sleep(bench.args.idle_seconds)
    rss = daemon.rss_mb()
    await daemon.stop()
    print(f"  idle daemon, 0 devices: rss_mb={rss:.0f}  peak_rss_mb={daemon.peak_kb / 1024:.0f}")
    bench.note("3 baseline: idle daemon, 0 devices, RSS", f"{rss:.0f} MB")


async def memory(bench: Bench) -> None:
    """3: a daemon that syncs `--memory-things` and runs live: peak and steady RSS."""
    total, rate = bench.args.memory_things, bench.args.rate
    print(f"\n3. resident memory with {total} devices tracked", flush=True)
    started = time.monotonic()
    if total > len(bench.names):
        await asyncio.to_thread(grow_estate, bench.stack, bench.names, total)
        assert bench.stack.aws.glue is not None
        await bench.stack.aws.glue.drain()
        print(f"  estate grown to {len(bench.names)} things in {time.monotonic() - started:.0f} s")
    sync, daemon = await initial_sync(bench, f"{len(bench.names)} devices, quotas off")
    live = time.monotonic()
    await bench.load(rate, bench.args.latency_seconds, as_service=True).run_to_end()
    await asyncio.sleep(10)
    steady = daemon.steady_rss_mb(live)
    await daemon.stop()
    peak = daemon.peak_kb / 1024
    print(
        f"  live at {rate:.0f} shadow changes/s (documents) for "
        f"{bench.args.latency_seconds:.0f} s: "
        f"steady_rss_mb={steady:.0f} (median while live)  peak_rss_mb={peak:.0f} (whole life)"
        f"\n  part 3 took {(time.monotonic() - started) / 60:.1f} min",
        flush=True,
    )
    bench.note(f"3 initial sync of {sync.devices}, quotas off", f"{sync.per_s:.0f} devices/s")
    bench.note(
        f"3 RSS with {sync.devices} devices: peak / steady",
        f"{peak:.0f} / {steady:.0f} MB",
        "< 500 MB",
    )


def print_summary(bench: Bench, elapsed: float) -> None:
    print(
        f"\nsummary (the whole run took {elapsed / 60:.1f} min; "
        f"load average at the end {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)"
    )
    rows = [("measure", "figure", "aim"), *bench.summary]
    width = [max(len(row[i]) for row in rows) for i in range(2)]
    for what, figure, aim in rows:
        print(f"  {what:<{width[0]}}  {figure:<{width[1]}}  {aim}")


async def run(args: argparse.Namespace) -> None:
    started = time.monotonic()
    this = asyncio.current_task()
    assert this is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, this.cancel)  # cleans up
    with tempfile.TemporaryDirectory(prefix="bench-mirror-") as tmp:
        workdir = Path(tmp)
        async with sim_stack(workdir / "sim") as stack:
            bench = Bench(stack, HubProbe(stack), workdir, args)
            print(
                f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} "
                "(other processes included); daemon: SQLite store, relay module on, "
                "reported-state mirroring off except in 1e, AWS rate budgets off",
                flush=True,
            )
            try:
                await idle_baseline(bench)
                built = time.monotonic()
                assert stack.aws.shadows is not None
                with principal_table_deferred(stack):
                    spec = EstateSpec(things=args.things, legacy_things=0)
                    estate = await asyncio.to_thread(
                        build_estate, stack.aws.moto, stack.aws.shadows, spec
                    )
                bench.names.extend(estate.devices)
                assert stack.aws.glue is not None
                await stack.aws.glue.drain()
                print(
                    f"\nestate: {len(bench.names)} things in {len(estate.groups)} groups, "
                    f"built in {time.monotonic() - built:.1f} s",
                    flush=True,
                )
                await sync_scenarios(bench)
                if args.memory_things:
                    await memory(bench)
            finally:
                for daemon in bench.daemons:
                    if daemon.alive:
                        assert daemon.process is not None
                        daemon.process.kill()
    print_summary(bench, time.monotonic() - started)


def code_version() -> str:
    """The commit the daemons run (read-only; uncommitted changes are not shown)."""
    head = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],  # noqa: S607 - git from PATH
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).parent,
    ).stdout.strip()
    return f"code: HEAD {head or '?'} plus any uncommitted changes in the working tree"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--things", type=int, default=10_000, help="estate for parts 1 and 2")
    parser.add_argument("--tiers", nargs="*", default=["S3", "S1"], choices=["S1", "S2", "S3"])
    parser.add_argument("--rate", type=float, default=200.0, help="live shadow updates/s")
    parser.add_argument("--latency-seconds", type=float, default=30.0)
    parser.add_argument("--saturate-seconds", type=float, default=30.0)
    parser.add_argument("--identity-seconds", type=float, default=90.0, help="0 skips it")
    parser.add_argument("--reported", action="store_true", help="run 1e (some 10 min more)")
    parser.add_argument("--memory-things", type=int, default=100_000, help="0 skips part 3")
    parser.add_argument("--idle-seconds", type=float, default=10.0)
    parser.add_argument("--sync-timeout", type=float, default=3600.0)
    args = parser.parse_args()
    print(code_version(), flush=True)
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
