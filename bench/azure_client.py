"""Operations per second of the bridge's IoT Hub client, unthrottled and paced to S1/S3 quotas.

The emulated hub's REST API (`ServiceApi`, HTTPS) runs in this process on its own event loop
thread. Clients, in the same process (one GIL shared, so every figure is a floor):

- `azure-iot-hub`: Microsoft's `IoTHubRegistryManager` from a pool of `--threads` threads,
  one manager per thread with keep-alive on (its best case), throttling off: the baseline;
- `bridge`: `IotHubService` with `--tasks` tasks on one event loop, first with an unlimited
  budget against an unthrottled hub, then with `RateBudget.for_tier(tier)` against the hub
  enforcing that tier's quotas (one unit).

Operations: `create` (PUT /devices/{id}, identity registry), `update twin` (PATCH /twins/{id},
twin updates), `bulk` (POST /devices, 100 devices a call, counted per device, identity
registry). For a paced run, "% of quota" is the steady rate once the budget's first burst is
spent (operations after it, over the time they took) against the tier's sustained rate, and
429s are the hub's refusals during the run. S1 bulk is skipped unless `--seconds` covers two
of its one-minute windows: a 98-device call fits only once a minute.

    .venv/bin/python bench/azure_client.py --seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import ssl
import statistics
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from azure.iot.hub import IoTHubRegistryManager
from azure.iot.hub.models import ExportImportDevice

from bridge.logging import configure_logging

# Module loggers bind at import, so quieten them before the emulator's modules load.
configure_logging("WARNING")

from bridge.azure import (  # noqa: E402
    DeviceIdentity,
    IotHubService,
    Operation,
    RateBudget,
    rate_for,
)
from bridge_sim.iothub.quotas import Quotas  # noqa: E402
from bridge_sim.iothub.service import ServiceApi  # noqa: E402
from bridge_sim.pki import CertificateAuthority  # noqa: E402

BULK = 100
TWIN_DEVICES = 500
SETTLE = 1.0  # seconds after a paced run's first burst before its steady rate counts
OPERATIONS = {
    "create": Operation.IDENTITY_REGISTRY,
    "update twin": Operation.TWIN_UPDATE,
    "bulk": Operation.IDENTITY_REGISTRY,
}
ids = itertools.count()


@dataclass
class Run:
    """Completions of one run: (seconds since start, operations counted), and call latencies."""

    done: list[tuple[float, int]]
    latencies: list[float]
    seconds: float
    window: tuple[float, float] | None = None

    def total_rate(self) -> float:
        return sum(n for _, n in self.done) / self.seconds

    def steady_rate(self) -> float | None:
        """Operations per second inside `window`, from its first completion to its last."""
        if self.window is None:
            return None
        begin, end = self.window
        inside = sorted((t, n) for t, n in self.done if begin <= t <= end)
        if len(inside) < 2:
            return None
        return sum(n for _, n in inside[1:]) / (inside[-1][0] - inside[0][0])


def serve_in_background(workdir: Path) -> tuple[ServiceApi, Path, Callable[[], None]]:
    ca = CertificateAuthority.create("bench CA")
    ca_path, _ = ca.write(workdir)
    cert_path, key_path = ca.issue_server("localhost", "127.0.0.1").write(workdir, "server")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_path, key_path)
    api = ServiceApi(context, hub_name="benchhub")
    loop = asyncio.new_event_loop()
    started, stop = threading.Event(), asyncio.Event()

    async def serve() -> None:
        async with api:
            started.set()
            await stop.wait()

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    if not started.wait(10):
        raise RuntimeError("the service API did not start")

    def shutdown() -> None:
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
        loop.close()

    return api, ca_path, shutdown


def bridge_call(service: IotHubService, operation: str) -> Callable[[int], Awaitable[int]]:
    async def create(_worker: int) -> int:
        await service.create_or_update_device(DeviceIdentity(f"c-{next(ids)}"))
        return 1

    async def update(worker: int) -> int:
        await service.update_twin(f"t-{worker % TWIN_DEVICES}", tags={"n": next(ids)})
        return 1

    async def bulk(_worker: int) -> int:
        devices = [DeviceIdentity(f"b-{next(ids)}") for _ in range(BULK)]
        result = await service.bulk(devices, "create")
        assert result.successful, result.errors[:3]
        return BULK

    return {"create": create, "update twin": update, "bulk": bulk}[operation]


async def run_bridge(
    call: Callable[[int], Awaitable[int]], tasks: int, seconds: float, burst: float | None = None
) -> Run:
    """Call from `tasks` tasks for `seconds`; with `burst`, first until the burst is spent.

    A paced run measures its steady rate over `seconds` that begin SETTLE seconds after the
    budget's first burst has been spent, so neither the burst nor its tail counts.
    """
    start = time.perf_counter()
    done: list[tuple[float, int]] = []
    latencies: list[float] = []
    stop, burst_spent = asyncio.Event(), asyncio.Event()
    window: list[float] = []
    spent = 0

    async def worker(number: int) -> None:
        nonlocal spent
        while not stop.is_set():
            began = time.perf_counter()
            count = await call(number)
            finished = time.perf_counter()
            done.append((finished - start, count))
            latencies.append(finished - began)
            spent += count
            if burst is not None and spent >= burst:
                burst_spent.set()

    async def stopper() -> None:
        if burst is not None:
            await burst_spent.wait()
            window.append(time.perf_counter() - start + SETTLE)
            window.append(window[0] + seconds)
            await asyncio.sleep(SETTLE)
        await asyncio.sleep(seconds)
        stop.set()

    await asyncio.gather(stopper(), *(worker(n) for n in range(tasks)))
    elapsed = time.perf_counter() - start
    return Run(done, latencies, elapsed, (window[0], window[1]) if window else None)


class SdkClients:
    """One keep-alive `IoTHubRegistryManager` per thread."""

    def __init__(self, connection_string: str, ca_path: Path) -> None:
        self._connection_string, self._ca_path = connection_string, str(ca_path)
        self._local = threading.local()

    def get(self) -> Any:
        manager = getattr(self._local, "manager", None)
        if manager is None:
            manager = IoTHubRegistryManager.from_connection_string(self._connection_string)
            manager.protocol.config.connection.verify = self._ca_path
            manager.protocol.config.keep_alive = True
            self._local.manager = manager
        return manager


def sdk_call(clients: SdkClients, operation: str) -> Callable[[int], int]:
    def create(_worker: int) -> int:
        clients.get().create_device_with_sas(f"c-{next(ids)}", "", "", "enabled")
        return 1

    def update(worker: int) -> int:
        patch = {"tags": {"n": next(ids)}}
        clients.get().update_twin(f"t-{worker % TWIN_DEVICES}", patch)
        return 1

    def bulk(_worker: int) -> int:
        entries = [
            ExportImportDevice(id=f"b-{next(ids)}", import_mode="create", status="enabled")
            for _ in range(BULK)
        ]
        assert clients.get().bulk_create_or_update_devices(entries).is_successful
        return BULK

    return {"create": create, "update twin": update, "bulk": bulk}[operation]


def run_sdk(call: Callable[[int], int], threads: int, seconds: float) -> Run:
    start = time.perf_counter()
    done: list[tuple[float, int]] = []
    latencies: list[float] = []

    def worker(number: int) -> None:
        while (began := time.perf_counter()) - start < seconds:
            count = call(number)
            finished = time.perf_counter()
            done.append((finished - start, count))  # list.append is atomic
            latencies.append(finished - began)

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(worker, range(threads)))
    return Run(done, latencies, time.perf_counter() - start)


def line(operation: str, client: str, budget: str, run: Run, **paced: Any) -> None:
    p50 = statistics.median(run.latencies) * 1000 if run.latencies else float("nan")
    text = f"{operation:<12} {client:<24} {budget:<10} {run.total_rate():>9.1f}"
    if paced:
        steady = run.steady_rate()
        share = "n/a" if steady is None else f"{steady / paced['quota']:.1%}"
        steady_text = "n/a" if steady is None else f"{steady:.2f}"
        text += f" {steady_text:>9} {paced['quota']:>9.2f} {share:>8} {paced['throttled']:>5}"
    else:
        text += f" {'':>9} {'':>9} {'':>8} {'':>5}"
    print(f"{text} {p50:>8.1f}", flush=True)


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as workdir:
        api, ca_path, shutdown = serve_in_background(Path(workdir))
        try:
            await bench(api, ca_path, args)
        finally:
            shutdown()


async def bench(api: ServiceApi, ca_path: Path, args: argparse.Namespace) -> None:
    connection = api.connection_string()
    print(
        f"emulated hub and clients in one process; {args.seconds:g} s per run; "
        f"azure-iot-hub: {args.threads} threads (keep-alive); bridge: {args.tasks} tasks\n"
    )
    print(
        f"{'operation':<12} {'client':<24} {'budget':<10} {'ops/s':>9} {'steady/s':>9} "
        f"{'quota/s':>9} {'% quota':>8} {'429s':>5} {'p50 ms':>8}"
    )
    async with IotHubService(connection, ca_bundle=ca_path) as service:
        await service.bulk([DeviceIdentity(f"t-{n}") for n in range(TWIN_DEVICES)])
    sdk = SdkClients(connection, ca_path)
    for operation in OPERATIONS:
        run = await asyncio.to_thread(run_sdk, sdk_call(sdk, operation), args.threads, args.seconds)
        line(operation, f"azure-iot-hub {args.threads} thr", "none", run)
        async with IotHubService(connection, ca_bundle=ca_path) as service:
            run = await run_bridge(bridge_call(service, operation), args.tasks, args.seconds)
        line(operation, f"bridge {args.tasks} tasks", "unlimited", run)
    for tier in ("S1", "S3"):
        for operation, throttle in OPERATIONS.items():
            if (tier, operation) == ("S1", "bulk") and args.seconds < 150:
                print(f"{operation:<12} {'bridge':<24} {tier:<10} skipped: needs --seconds >= 150")
                continue
            api.quotas = Quotas(tier)
            api.stats.clear()
            budget = RateBudget.for_tier(tier)
            burst = budget.burst(throttle)
            async with IotHubService(connection, budget=budget, ca_bundle=ca_path) as service:
                run = await run_bridge(
                    bridge_call(service, operation), args.tasks, args.seconds, burst
                )
            line(
                operation,
                f"bridge {args.tasks} tasks",
                tier,
                run,
                quota=rate_for(tier, 1, throttle).per_second,
                throttled=api.stats.count(status=429),
            )
    api.quotas = Quotas(None)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each run")
    parser.add_argument("--threads", type=int, default=16, help="azure-iot-hub threads")
    parser.add_argument("--tasks", type=int, default=64, help="bridge client tasks")
    asyncio.run(main(parser.parse_args()))
