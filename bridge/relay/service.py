"""The relay as a service of the daemon: AWS telemetry topics in, IoT Hub D2C messages out."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

from bridge.aws.source import AwsSource, default_client_id
from bridge.azure.amqp_telemetry import AmqpModuleSender
from bridge.azure.budget import RateBudget
from bridge.azure.hub import IotHubService
from bridge.azure.quotas import daily_messages
from bridge.azure.telemetry import ModuleSender
from bridge.config import CloudSettings, Settings
from bridge.core.service import Check
from bridge.core.store import SEEDED, Store, open_store
from bridge.core.streams import merge
from bridge.errors import ConfigError
from bridge.logging import get_logger
from bridge.mapping.telemetry import TopicRoute, parse_route, routes_from_plan
from bridge.metrics import Metrics
from bridge.relay.engine import DailyQuota, EngineOptions, RelayEngine

__all__ = ["RelayOptions", "RelayService", "relay_routes", "relay_sessions"]

_log = get_logger("relay.service")
_SEED_POLL = 0.5  # seconds between looks for the mirror's initial read


@dataclass(frozen=True)
class RelayOptions:
    """What the command line adds to the settings."""

    plan: Path | None = None  # migration plan JSON: its rules name the telemetry topics


def relay_routes(settings: Settings, plan: Path | None) -> list[TopicRoute]:
    """The topics to relay: BRIDGE_RELAY__TOPICS, else the plan's rules; ConfigError if none."""
    try:
        if settings.relay.topics:
            routes = [parse_route(text) for text in settings.relay.topics]
        elif plan is not None:
            routes = routes_from_plan(json.loads(plan.read_text()))
        else:
            routes = []
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot tell which telemetry topics to relay: {exc}") from exc
    if not routes:
        raise ConfigError(
            "the relay has no telemetry topics: set BRIDGE_RELAY__TOPICS (e.g. '[\"dt/+/#=2\"]') "
            "or pass --plan with rules whose device topic level is known"
        )
    return routes


def relay_sessions(
    client_id: str, sessions: int, shared_group: str | None
) -> list[tuple[str, str | None]]:
    """(client id, shared-subscription group) of each AWS session the relay reads through.

    One session keeps the client id and the group as set. Several take `<client id>-<n>`
    and share one group (the setting's, else the client id), so AWS splits the topics'
    messages among them instead of sending each to all of them.
    """
    if sessions == 1:
        return [(client_id, shared_group)]
    group = shared_group or "".join(c if c not in "/+#" else "_" for c in client_id)
    return [(f"{client_id}-{n}", group) for n in range(sessions)]


class RelayService:
    """Relays every AWS telemetry message of a not-yet-migrated device into IoT Hub."""

    name = "relay"

    def __init__(
        self,
        cloud: CloudSettings,
        settings: Settings,
        options: RelayOptions,
        *,
        metrics: Metrics,
        budget: RateBudget | None = None,
    ) -> None:
        self._cloud = cloud
        self._budget = budget  # shared with the mirror: one hub, one set of quotas
        self._settings = settings
        self._options = options
        self._metrics = metrics
        self._stack = contextlib.AsyncExitStack()
        self._stopping = asyncio.Event()
        self._routes: list[TopicRoute] = []
        self._sources: list[AwsSource] = []
        self._store: Store | None = None
        self._engine: RelayEngine | None = None
        self._seeded = False

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
        cloud, settings, relay = self._cloud, self._settings, self._settings.relay
        if cloud.IOTHUB_CONNECTION_STRING is None:
            raise ConfigError("IOTHUB_CONNECTION_STRING is not set: the relay has no IoT Hub")
        self._routes = relay_routes(settings, self._options.plan)
        tier = settings.iothub.tier
        budget = self._budget or RateBudget.for_hub(tier, settings.iothub.units)
        enter = self._stack.enter_async_context
        store = self._store = await enter(open_store(settings.store.dsn))
        hub = await enter(
            IotHubService(
                cloud.IOTHUB_CONNECTION_STRING.get_secret_value(),
                budget=budget,
                ca_bundle=cloud.IOTHUB_ROOT_CA,
            )
        )
        sender: AmqpModuleSender | ModuleSender
        if relay.transport == "amqp":
            sender = AmqpModuleSender(
                hub,
                settings.iothub.relay_module,
                budget=budget,
                host_name=cloud.IOTHUB_HOSTNAME,
                gateway_host=cloud.IOTHUB_GATEWAY_HOST,
                ca_file=cloud.IOTHUB_ROOT_CA,
                links_per_connection=relay.links_per_connection,
                token_ttl=relay.token_ttl,
                renew_before=max(30, relay.token_ttl // 6),
                idle_seconds=relay.idle_link_seconds or None,
            )
        else:
            sender = ModuleSender(
                hub,
                settings.iothub.relay_module,
                budget=budget,
                host_name=cloud.IOTHUB_HOSTNAME,
                gateway_host=cloud.IOTHUB_GATEWAY_HOST,
                ca_pem=cloud.IOTHUB_ROOT_CA.read_text() if cloud.IOTHUB_ROOT_CA else None,
                pool_size=relay.connections,
            )
        self._stack.push_async_callback(sender.close)
        client_id = (
            relay.client_id or f"{settings.mirror.client_id or default_client_id(cloud)}-relay"
        )
        for session_id, group in relay_sessions(client_id, relay.sessions, relay.shared_group):
            source = AwsSource(
                cloud,
                client_id=session_id,
                share_group=group,
                session_expiry_s=relay.session_expiry,
                max_pending=relay.in_flight,
                filters=[route.topic_filter for route in self._routes],
            )
            self._sources.append(await enter(source))
        quota = DailyQuota(
            daily_messages(tier, settings.iothub.units) if tier else None,
            self._metrics,
            relay.quota_alert_ratio,
        )
        self._engine = RelayEngine(
            self._routes,
            store,
            sender,
            budget=budget,
            metrics=self._metrics,
            quota=quota,
            options=EngineOptions(
                in_flight=relay.in_flight * relay.sessions,
                state_ttl=relay.state_ttl,
                drain_seconds=settings.shutdown_timeout * 0.8,
            ),
        )
        _log.info(
            "relay.started",
            client_id=client_id,
            transport=relay.transport,
            sessions=relay.sessions,
            topics=[f"{r.topic_filter}={r.device_level}" for r in self._routes],
        )

    def stop(self) -> None:
        """Stop reading AWS; `run` drains the sends in flight."""
        self._stopping.set()
        if self._engine is not None:
            self._engine.stop()

    async def ready(self) -> Mapping[str, Check]:
        """AWS subscription up, the mirror's initial read in the store, store reachable."""
        sources, store, _engine = self._parts()
        await store.schema_version()  # raises when the store is gone
        down = [source.client_id for source in sources if not source.connected]
        return {
            "aws_connected": Check(
                not down, f"the AWS subscription is down ({', '.join(down)})" if down else ""
            ),
            "store_seeded": Check(
                self._seeded, "" if self._seeded else "waiting for the mirror's initial read"
            ),
        }

    async def run(self) -> None:
        """Relay until stopped, once the store knows the estate."""
        sources, store, engine = self._parts()
        # Before the mirror's first read every device is unknown to the store, and unknown
        # devices are dead-lettered: wait (messages stay with the broker meanwhile).
        while await store.get_checkpoint(SEEDED) is None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), _SEED_POLL)
            if self._stopping.is_set():
                return
        self._seeded = True
        await engine.run(merge([source.deliveries() for source in sources]))
        _log.info("relay.stopped", sent=engine.sent)

    def _parts(self) -> tuple[list[AwsSource], Store, RelayEngine]:
        if not self._sources or self._store is None or self._engine is None:
            raise RuntimeError("the relay service was not started")
        return self._sources, self._store, self._engine
