"""The mirror as a service of the daemon: AWS source and reader in, IoT Hub target out.

Start-up order matters for "no gap": the AWS subscription (a persistent session) is up
before the initial read starts, so every change made during the read is either in the
read or arrives as an event, and versions decide between the two.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

from bridge.aws.clients import AwsApi, open_clients
from bridge.aws.credentials import CertificateAuth
from bridge.aws.event_config import (
    disabled,
    enable_command,
    enable_events,
    read_event_configurations,
)
from bridge.aws.ratelimit import RateLimiter
from bridge.aws.reader import AwsReader
from bridge.aws.source import AwsSource, default_client_id
from bridge.azure.budget import RateBudget
from bridge.azure.hub import IotHubService
from bridge.azure.reported import ReportedWriter
from bridge.azure.retry import HubStats
from bridge.azure.sas import ServiceConnectionString
from bridge.azure.storage import ImportContainer
from bridge.azure.target import AuthLookup, AzureTarget
from bridge.config import CloudSettings, Settings
from bridge.core.machine import State
from bridge.core.ports import DeletePolicy
from bridge.core.service import Check
from bridge.core.store import Store, open_store
from bridge.errors import ConfigError, Denied, SourceError
from bridge.logging import get_logger
from bridge.mapping.models import AuthPlan
from bridge.mapping.plan_file import load_plan, plan_auth
from bridge.metrics import Metrics
from bridge.mirror.engine import Engine, EngineOptions
from bridge.mirror.exporter import Exporter

__all__ = ["MirrorOptions", "MirrorService"]

_log = get_logger("mirror.service")
_ONCE_TIMEOUT = 3600.0  # seconds a `--once` catch-up may take to settle
_SYNCED = "initial_sync.on_azure"  # checkpoint: every device of the initial sync is on Azure
_NOT_YET_ON_AZURE = (State.DISCOVERED, State.PROVISIONING)


@dataclass(frozen=True)
class MirrorOptions:
    """What the command line adds to the settings."""

    plan: Path | None = None  # migration plan JSON: per-device auth decided by `plan`
    once: bool = False  # initial sync, settle, one anti-entropy pass, then done
    seed: bool = True  # run the initial sync if the store has not done it yet


class MirrorService:
    """Keeps every thing and shadow in an IoT Hub identity and twin until stopped."""

    name = "mirror"

    def __init__(
        self,
        cloud: CloudSettings,
        settings: Settings,
        options: MirrorOptions,
        *,
        metrics: Metrics,
        budget: RateBudget | None = None,
    ) -> None:
        self._cloud = cloud
        self._settings = settings
        self._options = options
        self._metrics = metrics
        # Shared with the other services writing to the same hub (the relay), if given.
        self._budget = budget or RateBudget.for_hub(settings.iothub.tier, settings.iothub.units)
        self._stack = contextlib.AsyncExitStack()
        self._stopping = asyncio.Event()
        self._engine: Engine | None = None
        self._source: AwsSource | None = None
        self._store: Store | None = None
        self._reader: AwsReader | None = None
        self._exporter: Exporter | None = None
        self._synced = False  # the initial sync has put every device on Azure
        self._events_enabled: list[str] = []  # registry event types the bridge turned on

    async def __aenter__(self) -> Self:
        try:
            await self._open()
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._stack.aclose()

    async def _open(self) -> None:
        cloud, settings, mirror = self._cloud, self._settings, self._settings.mirror
        if cloud.IOTHUB_CONNECTION_STRING is None:
            raise ConfigError("IOTHUB_CONNECTION_STRING is not set: the mirror has no IoT Hub")
        # Settings first, before any connection: a typo should not wait on a network.
        ServiceConnectionString.parse(cloud.IOTHUB_CONNECTION_STRING.get_secret_value())
        storage = cloud.AZURE_STORAGE_CONNECTION_STRING
        container = ImportContainer(storage.get_secret_value()) if storage else None
        limiter = RateLimiter(scale=mirror.aws_rate_scale)
        enter = self._stack.enter_async_context
        store = self._store = await enter(open_store(settings.store.dsn))
        iot, _data = await enter(open_clients(cloud, limiter, concurrency=8))
        self._events_enabled = await _registry_events(iot, enable=mirror.enable_registry_events)
        reader = self._reader = await enter(AwsReader(cloud, limiter=limiter))
        hub = await enter(_hub(cloud, settings, self._metrics, self._budget))
        source = self._source = await enter(
            AwsSource(
                cloud,
                client_id=mirror.client_id,
                share_group=mirror.shared_group,
                session_expiry_s=mirror.session_expiry,
            )
        )
        plan = self._options.plan
        reported = _reported_writer(cloud, settings, hub)
        if reported is not None:
            self._stack.push_async_callback(reported.close)
        target = AzureTarget(
            hub,
            auth_lookup=_plan_auth(plan) if plan else CertificateAuth(iot),
            relay_module=settings.iothub.relay_module,
            import_container=container,
            reported=reported,
        )
        engine_options = EngineOptions(
            import_threshold=settings.iothub.import_threshold if container else None,
            owner=mirror.client_id or default_client_id(cloud),
            delete_policy=DeletePolicy(mirror.delete_policy),
            concurrency=mirror.concurrency,
            reconcile_every=mirror.reconcile_interval or None,
            # Inside the daemon's own timeout, so the mirror says what it left behind.
            drain_seconds=settings.shutdown_timeout * 0.8,
        )
        self._engine = Engine(store, target, source=source, reader=reader, options=engine_options)
        self._exporter = Exporter(
            self._engine,
            store,
            self._metrics,
            external_changes=lambda: target.external_changes,
            source_pending=lambda: source.pending,
        )

    def stop(self) -> None:
        """Stop reading AWS and starting writes; `run` drains what is in flight."""
        self._stopping.set()

    async def ready(self) -> Mapping[str, Check]:
        """AWS subscription up, every device of the initial sync on Azure, store reachable."""
        _engine, source, store = self._parts()
        await store.schema_version()  # raises when the store is gone
        return {
            "aws_connected": Check(
                source.connected, "" if source.connected else "the AWS subscription is down"
            ),
            "registry_events": Check(
                ok=True,
                detail=f"turned on by the bridge at start: {', '.join(self._events_enabled)}"
                if self._events_enabled
                else "",
            ),
            "initial_sync": await self._initial_sync_check(),
            "store": Check(ok=True),
        }

    async def _initial_sync_check(self) -> Check:
        """Done once the AWS read is folded in and no device of it waits to be created.

        Once done it stays done (a checkpoint), so things created later in live mode do
        not flap readiness. A device IoT Hub refused (FAILED) counts as handled: it is an
        operator's problem, listed by `iot-bridge status`, not a reason to stay unready.
        """
        engine, _source, store = self._parts()
        if self._synced or await store.get_checkpoint(_SYNCED) is not None:
            self._synced = True
            return Check(ok=True)
        if not await engine.seeded():
            return Check(ok=False, detail="reading the AWS estate")
        counts = await store.counts_by_state()
        total = sum(counts.values()) - counts.get(State.DELETED, 0)
        waiting = sum(counts.get(state, 0) for state in _NOT_YET_ON_AZURE)
        progress = {"devices": total, "on_azure": total - waiting}
        if waiting:
            return Check(ok=False, detail="creating devices on IoT Hub", progress=progress)
        await store.set_checkpoint(_SYNCED, str(total))
        self._synced = True
        return Check(ok=True)

    async def run(self) -> None:
        """Mirror until stopped; with `once`, until the first full sync is done."""
        engine, _source, store = self._parts()
        assert self._exporter is not None
        assert self._reader is not None
        # A marker that only a clean stop removes: finding it at start means the last run
        # was killed, and whatever it had not received yet is checked by an anti-entropy pass.
        marker = f"daemon.running.{engine.options.owner}"
        unclean = bool(await store.get_checkpoint(marker))
        await store.set_checkpoint(marker, "1")
        try:
            async with asyncio.TaskGroup() as tasks:
                running = tasks.create_task(engine.run(), name="mirror.engine")
                exporting = tasks.create_task(self._exporter.run(), name="mirror.exporter")
                work = tasks.create_task(self._first_work(unclean), name="mirror.initial_sync")
                repairing = tasks.create_task(
                    self._repair_lost_sessions(work), name="mirror.lost_sessions"
                )
                stopping = tasks.create_task(self._stopping.wait(), name="mirror.stopping")
                await asyncio.wait({work, stopping}, return_when=asyncio.FIRST_COMPLETED)
                if work.done():
                    work.result()  # raises what stopped the initial sync
                if not (self._options.once and work.done()):
                    await stopping  # mirror live until stopped
                _log.info("mirror.stopping", initial_sync_done=work.done())
                # Stop consuming first (an initial sync cut short is repeated on the next
                # start, since `seeded` is set only once it completes), then drain.
                work.cancel()
                repairing.cancel()
                stopping.cancel()
                running.cancel()
                exporting.cancel()
            await store.set_checkpoint(marker, "")  # a clean stop: no pass needed next time
        finally:
            await self._exporter.export()

    async def _first_work(self, unclean: bool) -> None:  # noqa: FBT001 - one internal flag
        engine, source, _store = self._parts()
        assert self._reader is not None
        # Subscribed before this read or pass begins, so it covers what the missing
        # session would have held; a session lost from now on is for the watcher below.
        no_session = source.session_lost.is_set()
        source.session_lost.clear()
        if self._options.seed and not await engine.seeded():
            _log.info("mirror.initial_sync_started")
            await engine.seed(self._reader.snapshot(), await self._reader.read_groups())
        elif unclean:
            _log.warning("mirror.unclean_stop_found", action="anti-entropy pass")
            await engine.reconcile_logged()
        elif no_session:
            # Away longer than the session expiry (or the broker lost it): changes made
            # meanwhile reached no one.
            _log.warning("mirror.aws_session_not_found", action="anti-entropy pass")
            await engine.reconcile_logged()
        if self._options.once:
            await engine.settle(timeout=_ONCE_TIMEOUT)
            await engine.reconcile()
            await engine.settle(timeout=_ONCE_TIMEOUT)

    async def _repair_lost_sessions(self, first: asyncio.Task[None]) -> None:
        """Once the first work is done, repair every session AWS lost with a pass."""
        if self._options.once:
            return
        engine, source, _store = self._parts()
        await asyncio.wait({first})
        while True:
            await source.session_lost.wait()
            source.session_lost.clear()
            _log.warning("mirror.aws_session_lost", action="anti-entropy pass")
            await engine.reconcile_logged()

    def _parts(self) -> tuple[Engine, AwsSource, Store]:
        if self._engine is None or self._source is None or self._store is None:
            raise RuntimeError("the mirror service was not started")
        return self._engine, self._source, self._store


async def _registry_events(iot: AwsApi, *, enable: bool) -> list[str]:
    """Check that AWS publishes the registry events the mirror lives on; return what we enabled.

    Without them the mirror would see changes only at anti-entropy passes, silently, so
    the daemon refuses to start unless the operator lets it turn them on.
    """
    try:
        off = disabled(await read_event_configurations(iot))
    except Denied as exc:
        raise SourceError(
            "the bridge may not read AWS IoT's event configuration; grant it "
            f"iot:DescribeEventConfigurations ({exc})"
        ) from exc
    if not off:
        return []
    if not enable:
        raise SourceError(
            f"AWS IoT publishes no registry events of types {', '.join(off)}, which the mirror "
            f"needs; turn them on with `{enable_command(off)}`, or let the bridge do it with "
            "--enable-registry-events (BRIDGE_MIRROR__ENABLE_REGISTRY_EVENTS=true)"
        )
    try:
        await enable_events(iot, off)
    except Denied as exc:
        raise SourceError(
            "the bridge may not turn registry events on; grant it "
            f"iot:UpdateEventConfigurations or run `{enable_command(off)}` ({exc})"
        ) from exc
    _log.warning("mirror.registry_events_enabled", types=off)
    return off


def _plan_auth(path: Path) -> AuthLookup:
    """Per-device auth from a migration plan; devices missing from it get none."""
    auths = plan_auth(load_plan(path))

    async def lookup(device_id: str) -> AuthPlan | None:
        return auths.get(device_id)

    return lookup


@contextlib.asynccontextmanager
async def _hub(
    cloud: CloudSettings, settings: Settings, metrics: Metrics, budget: RateBudget
) -> AsyncIterator[IotHubService]:
    assert cloud.IOTHUB_CONNECTION_STRING is not None

    def count(event: str, operation: object) -> None:
        if event == "throttled":
            metrics.throttles.labels(side="azure", operation=str(operation)).inc()
        elif event == "retry":
            metrics.retries.labels(side="azure", operation=str(operation)).inc()
        elif event == "failed":
            metrics.errors.labels(side="azure", reason=str(operation)).inc()

    async with IotHubService(
        cloud.IOTHUB_CONNECTION_STRING.get_secret_value(),
        budget=budget,
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
