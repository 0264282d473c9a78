"""`iot-bridge run`: open everything, run the engine, shut down gracefully.

Start-up order matters for "no gap": the AWS subscription (a persistent session) is up
before the initial read starts, so every change made during the read is either in the
read or arrives as an event, and versions decide between the two.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from bridge.aws.clients import open_clients
from bridge.aws.credentials import CertificateAuth
from bridge.aws.ratelimit import RateLimiter
from bridge.aws.reader import AwsReader
from bridge.aws.source import AwsSource, default_client_id
from bridge.azure.budget import RateBudget
from bridge.azure.hub import IotHubService
from bridge.azure.reported import ReportedWriter
from bridge.azure.retry import HubStats
from bridge.azure.storage import ImportContainer
from bridge.azure.target import AuthLookup, AzureTarget
from bridge.config import CloudSettings, Settings
from bridge.core.ports import DeletePolicy
from bridge.core.store import Store, open_store
from bridge.daemon.http import HealthServer
from bridge.errors import ConfigError
from bridge.logging import get_logger
from bridge.mapping.models import AuthPlan
from bridge.metrics import Metrics
from bridge.mirror.engine import Engine, EngineOptions
from bridge.mirror.exporter import Exporter

__all__ = ["RunOptions", "run_daemon"]

_log = get_logger("daemon")


@dataclass(frozen=True)
class RunOptions:
    """What the command line adds to the settings."""

    plan: Path | None = None  # migration plan JSON: per-device auth decided by `plan`
    once: bool = False  # initial sync, settle, one anti-entropy pass, then exit
    seed: bool = True  # run the initial sync if the store has not done it yet


def _plan_auth(path: Path) -> AuthLookup:
    """Per-device auth from a migration plan; devices missing from it get none."""
    plan = json.loads(path.read_text())
    auths = {
        device["device_id"]: AuthPlan.model_validate(device["auth"])
        for device in plan.get("devices", [])
        if device.get("auth")
    }

    async def lookup(device_id: str) -> AuthPlan | None:
        return auths.get(device_id)

    return lookup


def _budget(settings: Settings) -> RateBudget:
    tier = settings.iothub.tier
    return RateBudget.for_tier(tier, settings.iothub.units) if tier else RateBudget.unlimited()


async def _ready(engine: Engine, source: AwsSource, store: Store) -> dict[str, bool]:
    seeded = await engine.seeded()
    await store.schema_version()  # raises when the store is gone
    return {"aws_connected": source.connected, "initial_sync": seeded, "store": True}


@contextlib.asynccontextmanager
async def _hub(
    cloud: CloudSettings, settings: Settings, metrics: Metrics
) -> AsyncIterator[IotHubService]:
    if cloud.IOTHUB_CONNECTION_STRING is None:
        raise ConfigError("IOTHUB_CONNECTION_STRING is not set")

    def count(event: str, operation: object) -> None:
        if event == "throttled":
            metrics.throttles.labels(side="azure", operation=str(operation)).inc()
        elif event == "retry":
            metrics.retries.labels(side="azure", operation=str(operation)).inc()
        elif event == "failed":
            metrics.errors.labels(side="azure", reason=str(operation)).inc()

    async with IotHubService(
        cloud.IOTHUB_CONNECTION_STRING.get_secret_value(),
        budget=_budget(settings),
        stats=HubStats(listener=count),
        ca_bundle=cloud.IOTHUB_ROOT_CA,
        max_connections=max(settings.mirror.concurrency, 8),
    ) as hub:
        yield hub


def _reported_writer(
    cloud: CloudSettings, settings: Settings, hub: IotHubService
) -> ReportedWriter | None:
    if not settings.iothub.mirror_reported:
        return None
    ca = cloud.IOTHUB_ROOT_CA.read_text() if cloud.IOTHUB_ROOT_CA else None
    return ReportedWriter(
        hub,
        settings.iothub.relay_module,
        host_name=cloud.IOTHUB_HOSTNAME,
        gateway_host=cloud.IOTHUB_GATEWAY_HOST,
        ca_pem=ca,
        pool_size=settings.iothub.reported_connections,
    )


async def run_daemon(
    cloud: CloudSettings,
    settings: Settings,
    options: RunOptions,
    *,
    metrics: Metrics | None = None,
) -> None:
    """Run until SIGTERM/SIGINT (or, with `once`, until the first full sync is done)."""
    metrics = metrics or Metrics.create()
    mirror = settings.mirror
    storage = cloud.AZURE_STORAGE_CONNECTION_STRING
    container = ImportContainer(storage.get_secret_value()) if storage else None
    engine_options = EngineOptions(
        import_threshold=settings.iothub.import_threshold if container else None,
        owner=mirror.client_id or default_client_id(cloud),
        delete_policy=DeletePolicy(mirror.delete_policy),
        concurrency=mirror.concurrency,
        reconcile_every=mirror.reconcile_interval or None,
    )
    limiter = RateLimiter(scale=mirror.aws_rate_scale)
    async with (
        open_store(settings.store.dsn) as store,
        open_clients(cloud, limiter, concurrency=8) as (iot, _data),
        AwsReader(cloud, limiter=limiter) as reader,
        _hub(cloud, settings, metrics) as hub,
        AwsSource(
            cloud,
            client_id=mirror.client_id,
            share_group=mirror.shared_group,
            session_expiry_s=mirror.session_expiry,
        ) as source,
    ):
        lookup = _plan_auth(options.plan) if options.plan else CertificateAuth(iot)
        reported = _reported_writer(cloud, settings, hub)
        target = AzureTarget(
            hub,
            auth_lookup=lookup,
            relay_module=settings.iothub.relay_module,
            import_container=container,
            reported=reported,
        )
        engine = Engine(store, target, source=source, reader=reader, options=engine_options)
        health = HealthServer(metrics.registry, lambda: _ready(engine, source, store))
        await health.start(settings.http.host, settings.http.port)
        _log.info("serving health and metrics", port=health.port)
        try:
            exporter = Exporter(
                engine,
                store,
                metrics,
                external_changes=lambda: target.external_changes,
                source_pending=lambda: source.pending,
            )
            await _supervise(engine, exporter, reader, store, options)
        finally:
            await health.close()
            if reported is not None:
                await reported.close()


async def _supervise(
    engine: Engine, exporter: Exporter, reader: AwsReader, store: Store, options: RunOptions
) -> None:
    # A marker that only a graceful stop removes: finding it at start means the last run
    # was killed, and whatever it had not received yet is checked by an anti-entropy pass.
    marker = f"daemon.running.{engine.options.owner}"
    unclean = bool(await store.get_checkpoint(marker))
    await store.set_checkpoint(marker, "1")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        async with asyncio.TaskGroup() as tasks:
            running = tasks.create_task(engine.run(), name="engine")
            exporting = tasks.create_task(exporter.run(), name="exporter")
            if options.seed and not await engine.seeded():
                _log.info("initial sync: reading the AWS estate")
                await engine.seed(reader.snapshot(), await reader.read_groups())
            elif unclean:
                _log.warning("the last run did not stop cleanly: running an anti-entropy pass")
                tasks.create_task(engine.reconcile_logged(), name="reconcile-after-crash")
            if options.once:
                await engine.settle(timeout=3600)
                await engine.reconcile()
                await engine.settle(timeout=3600)
                stop.set()
            await stop.wait()
            _log.info("shutting down: draining writes in flight")
            running.cancel()
            exporting.cancel()
        await store.set_checkpoint(marker, "")  # graceful: no pass needed next time
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        await exporter.export()
