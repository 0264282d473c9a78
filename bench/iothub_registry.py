"""Registry operations per second served by the emulated IoT Hub's service REST API.

The REST API (`ServiceApi`, HTTPS) runs in this process on its own event loop thread, with
throttling off; Microsoft's `IoTHubRegistryManager` calls it from a pool of `--workers`
threads, one registry manager per thread. Client and server share one Python process and
its GIL, so the rates are a floor for a server with a machine of its own.

Phases, one after the other:

- `create_device_with_sas`: `--devices` new devices, one PUT each;
- `get_twin` and `update_twin` (a tags and desired patch) on each of them;
- `bulk_create_or_update_devices`: `--bulk-devices` more, 100 per call, counted per device
  (latency is per call);
- `query_iot_hub`: every worker reads the first `--query-pages` pages of
  `SELECT * FROM devices`, 100 twins a page, counted per page. The emulator re-runs the
  query over the whole registry for every page, so a page costs O(registry size).

For each: operations per second and the p50/p99 latency of one SDK call. As shipped, the
SDK opens a new TLS connection for every call (msrest's `keep_alive` is off unless the client
is used as a context manager); `--keep-alive` reuses one per worker, as
`with registry_manager.protocol:` would.

    .venv/bin/python bench/iothub_registry.py --workers 8 --devices 2000
"""

from __future__ import annotations

import argparse
import asyncio
import ssl
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from azure.iot.hub import IoTHubRegistryManager
from azure.iot.hub.models import ExportImportDevice, QuerySpecification

from bridge.logging import configure_logging

# Module loggers bind at import, so quieten them before the emulator's modules load.
configure_logging("WARNING")

from bridge_sim.iothub.service import ServiceApi  # noqa: E402
from bridge_sim.pki import CertificateAuthority  # noqa: E402

BULK_SIZE = 100
PAGE_SIZE = 100


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def report(label: str, count: int, elapsed: float, latencies: list[float], unit: str) -> None:
    print(
        f"{label:<32} {count / elapsed:>9.0f} {unit}/s   "
        f"p50 {percentile(latencies, 0.50) * 1000:7.2f} ms   "
        f"p99 {percentile(latencies, 0.99) * 1000:7.2f} ms   "
        f"(mean {statistics.fmean(latencies) * 1000:.2f} ms, {len(latencies)} calls)"
    )


def serve_in_background(workdir: Path) -> tuple[ServiceApi, Path, Callable[[], None]]:
    """Run the service API on its own loop thread; returns it, its CA file and a stop function."""
    ca = CertificateAuthority.create("bench CA")
    ca_path, _ = ca.write(workdir)
    cert_path, key_path = ca.issue_server("localhost", "127.0.0.1").write(workdir, "server")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_path, key_path)
    api = ServiceApi(context, hub_name="benchhub")  # no tier: throttling off
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


class Clients:
    """One `IoTHubRegistryManager` per worker thread, built on first use."""

    def __init__(self, connection_string: str, ca_path: Path, *, keep_alive: bool) -> None:
        self._connection_string = connection_string
        self._ca_path = str(ca_path)
        self._keep_alive = keep_alive
        self._local = threading.local()

    def get(self) -> Any:
        manager = getattr(self._local, "manager", None)
        if manager is None:
            manager = IoTHubRegistryManager.from_connection_string(self._connection_string)
            manager.protocol.config.connection.verify = self._ca_path
            manager.protocol.config.keep_alive = self._keep_alive
            self._local.manager = manager
        return manager


def run_phase(
    pool: ThreadPoolExecutor, calls: Iterable[Callable[[], int]]
) -> tuple[int, float, list[float]]:
    """Run every call on the pool; (operations counted, seconds elapsed, latency per call)."""

    def timed(call: Callable[[], int]) -> tuple[int, float]:
        started = time.perf_counter()
        counted = call()
        return counted, time.perf_counter() - started

    started = time.perf_counter()
    results = list(pool.map(timed, calls))
    elapsed = time.perf_counter() - started
    return sum(count for count, _ in results), elapsed, [latency for _, latency in results]


def page_through(clients: Clients, limit: int, latencies: list[float]) -> int:
    """Read up to `limit` pages of every twin with `query_iot_hub`, timing each page."""
    query, token, pages = QuerySpecification(query="SELECT * FROM devices"), None, 0
    while pages < limit:
        started = time.perf_counter()
        result = clients.get().query_iot_hub(query, token, PAGE_SIZE)
        latencies.append(time.perf_counter() - started)  # list.append is atomic
        pages += 1
        token = result.continuation_token
        if not token:
            break
    return pages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=8, help="client threads")
    parser.add_argument("--devices", type=int, default=2000, help="devices created one by one")
    parser.add_argument("--bulk-devices", type=int, default=10000, help="devices created in bulk")
    parser.add_argument("--query-pages", type=int, default=10, help="query pages per worker")
    parser.add_argument("--keep-alive", action="store_true", help="reuse connections")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        api, ca_path, shutdown = serve_in_background(Path(workdir))
        clients = Clients(api.connection_string(), ca_path, keep_alive=args.keep_alive)
        connections = "one kept alive per worker" if args.keep_alive else "a new one per call"
        print(
            f"server: ServiceApi in this process on its own thread and event loop, throttling "
            f"off; client: IoTHubRegistryManager in {args.workers} threads (one GIL shared), "
            f"TLS connections: {connections}"
        )
        try:
            with ThreadPoolExecutor(args.workers) as pool:
                run_all(pool, clients, args)
        finally:
            shutdown()


def run_all(pool: ThreadPoolExecutor, clients: Clients, args: argparse.Namespace) -> None:
    devices, bulk_devices = args.devices, args.bulk_devices
    ids = [f"bench-{n:06d}" for n in range(devices)]

    def create(device_id: str) -> Callable[[], int]:
        return lambda: bool(clients.get().create_device_with_sas(device_id, "", "", "enabled"))

    def get_twin(device_id: str) -> Callable[[], int]:
        return lambda: bool(clients.get().get_twin(device_id))

    def update_twin(device_id: str) -> Callable[[], int]:
        patch = {"tags": {"bench": True}, "properties": {"desired": {"rate": 5}}}
        return lambda: bool(clients.get().update_twin(device_id, patch))

    def bulk(first: int) -> Callable[[], int]:
        entries = [
            ExportImportDevice(id=f"bulk-{n:07d}", import_mode="create", status="enabled")
            for n in range(first, min(first + BULK_SIZE, bulk_devices))
        ]

        def call() -> int:
            assert clients.get().bulk_create_or_update_devices(entries).is_successful
            return len(entries)

        return call

    for label, factory in (
        ("create_device_with_sas", create),
        ("get_twin", get_twin),
        ("update_twin", update_twin),
    ):
        count, elapsed, latencies = run_phase(pool, [factory(i) for i in ids])
        assert count == devices
        report(label, count, elapsed, latencies, "ops")
    calls = [bulk(first) for first in range(0, bulk_devices, BULK_SIZE)]
    count, elapsed, latencies = run_phase(pool, calls)
    assert count == bulk_devices
    report(f"bulk_create_or_update x{BULK_SIZE}", count, elapsed, latencies, "devices")
    pages_each = min(args.query_pages, -(-(devices + bulk_devices) // PAGE_SIZE))
    # Latency is per page, not per worker's run of pages.
    page_latencies: list[float] = []
    scans = [lambda: page_through(clients, args.query_pages, page_latencies)] * args.workers
    count, elapsed, _ = run_phase(pool, scans)
    assert count == pages_each * args.workers
    report(f"query_iot_hub pages of {PAGE_SIZE}", count, elapsed, page_latencies, "pages")


if __name__ == "__main__":
    main()
