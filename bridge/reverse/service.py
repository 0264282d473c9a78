"""The reverse path as a service of the daemon: IoT Hub's events in, AWS out."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from types import TracebackType
from typing import Self

from bridge.aws.clients import open_clients
from bridge.aws.publisher import AwsPublisher
from bridge.aws.ratelimit import RateLimiter
from bridge.aws.shadows import ShadowWriter
from bridge.aws.source import default_client_id
from bridge.azure.budget import RateBudget
from bridge.azure.events import HubEventReader
from bridge.azure.hub import IotHubService
from bridge.config import CloudSettings, Settings
from bridge.core.service import Check
from bridge.core.store import Store, open_store
from bridge.errors import ConfigError
from bridge.logging import get_logger
from bridge.metrics import Metrics
from bridge.reverse.engine import EngineOptions, ReverseEngine
from bridge.reverse.telemetry import TopicTemplates
from bridge.reverse.twins import TwinState, TwinSync

__all__ = ["ReverseService", "reverse_client_id"]

_log = get_logger("reverse.service")
_DRAIN_POLL = 0.05


def reverse_client_id(cloud: CloudSettings, settings: Settings) -> str:
    """BRIDGE_REVERSE__CLIENT_ID, else the mirror's client id with `-reverse` appended."""
    mirror = settings.mirror.client_id or default_client_id(cloud)
    return settings.reverse.client_id or f"{mirror}-reverse"


class ReverseService:
    """Carries cut-over devices' twin changes and telemetry from IoT Hub back to AWS."""

    name = "reverse"

    def __init__(
        self,
        cloud: CloudSettings,
        settings: Settings,
        *,
        metrics: Metrics,
        budget: RateBudget | None = None,
    ) -> None:
        self._cloud = cloud
        self._budget = budget  # shared with the mirror: one hub, one set of quotas
        self._settings = settings
        self._metrics = metrics
        self._stack = contextlib.AsyncExitStack()
        self._stopping = asyncio.Event()
        self._store: Store | None = None
        self._publisher: AwsPublisher | None = None
        self._reader: HubEventReader | None = None
        self._engine: ReverseEngine | None = None

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
        cloud, settings, reverse = self._cloud, self._settings, self._settings.reverse
        if cloud.IOTHUB_EVENTHUB_CONNECTION_STRING is None:
            raise ConfigError(
                "IOTHUB_EVENTHUB_CONNECTION_STRING is not set: the reverse path reads IoT Hub's "
                "Event Hubs-compatible endpoint"
            )
        if cloud.AZURE_STORAGE_CONNECTION_STRING is None:
            raise ConfigError(
                "AZURE_STORAGE_CONNECTION_STRING is not set: the reverse path keeps its "
                "checkpoints in blob storage"
            )
        try:
            templates = TopicTemplates(reverse.topic_template, reverse.topic_templates)
        except ValueError as exc:
            raise ConfigError(f"BRIDGE_REVERSE__TOPIC_TEMPLATE(S): {exc}") from exc
        enter = self._stack.enter_async_context
        store = self._store = await enter(open_store(settings.store.dsn))
        limiter = RateLimiter(scale=settings.mirror.aws_rate_scale)
        _iot, data = await enter(open_clients(cloud, limiter, concurrency=8))
        client_id = reverse_client_id(cloud, settings)
        self._publisher = await enter(AwsPublisher(cloud, client_id=client_id))
        self._reader = await enter(
            HubEventReader(
                cloud.IOTHUB_EVENTHUB_CONNECTION_STRING.get_secret_value(),
                consumer_group=reverse.consumer_group,
                storage_connection_string=cloud.AZURE_STORAGE_CONNECTION_STRING.get_secret_value(),
                container=reverse.checkpoint_container,
                max_batch=reverse.in_flight,
            )
        )
        if cloud.IOTHUB_CONNECTION_STRING is None:
            raise ConfigError("IOTHUB_CONNECTION_STRING is not set: the reverse path reads twins")
        hub = await enter(
            IotHubService(
                cloud.IOTHUB_CONNECTION_STRING.get_secret_value(),
                budget=self._budget,
                ca_bundle=cloud.IOTHUB_ROOT_CA,
                max_connections=4,
            )
        )

        async def read_twin(device_id: str) -> TwinState:
            twin = await hub.get_twin(device_id)
            return TwinState(
                twin.tags, twin.desired, twin.reported, twin.reported_version, twin.desired_version
            )

        self._engine = ReverseEngine(
            store,
            self._publisher,
            TwinSync(store, ShadowWriter(data), read_twin),
            templates=templates,
            metrics=self._metrics,
            options=EngineOptions(
                telemetry=reverse.telemetry,
                twins=reverse.twins,
                in_flight=reverse.in_flight,
                state_ttl=reverse.state_ttl,
            ),
        )
        _log.info(
            "reverse.started",
            client_id=client_id,
            consumer_group=reverse.consumer_group,
            telemetry=reverse.telemetry,
            twins=reverse.twins,
        )

    def stop(self) -> None:
        """Take no new batch; `run` lets the ones in flight finish, then stops reading."""
        self._stopping.set()

    async def ready(self) -> Mapping[str, Check]:
        """Connected to AWS, reading partitions of IoT Hub's endpoint, store reachable."""
        store, publisher, reader, _engine = self._parts()
        await store.schema_version()  # raises when the store is gone
        owned = len(reader.partitions)
        reading = Check(
            owned > 0,
            ""
            if owned
            else (reader.last_error or "no partition of IoT Hub's endpoint claimed yet"),
            {"partitions": owned},
        )
        return {
            "aws_connected": Check(
                publisher.connected, "" if publisher.connected else "the AWS connection is down"
            ),
            "events_reading": reading,
        }

    async def run(self) -> None:
        """Read and carry until stopped; what is unsettled then is read again next time."""
        _store, _publisher, reader, engine = self._parts()
        reading = asyncio.create_task(reader.run(engine.handle), name="reverse.read")
        stopping = asyncio.create_task(self._stopping.wait(), name="reverse.stopping")
        try:
            await asyncio.wait({reading, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if not reading.done():
                engine.stop()
                await self._drain(engine)
                await reader.close()
            await reading  # raises what broke a batch (the store, a bug): the service fails
        finally:
            stopping.cancel()
            if not reading.done():
                reading.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reading
        _log.info("reverse.stopped", republished=engine.republished)

    async def _drain(self, engine: ReverseEngine) -> None:
        """Let batches in flight settle (publishes waiting for their PUBACK), for a while."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._settings.shutdown_timeout * 0.8):
                while engine.busy:  # noqa: ASYNC110 - the engine counts, nothing to await
                    await asyncio.sleep(_DRAIN_POLL)
        if engine.busy:
            _log.warning("reverse.drain_timed_out", batches=engine.busy)

    def _parts(self) -> tuple[Store, AwsPublisher, HubEventReader, ReverseEngine]:
        if (
            self._store is None
            or self._publisher is None
            or self._reader is None
            or self._engine is None
        ):
            raise RuntimeError("the reverse service was not started")
        return self._store, self._publisher, self._reader, self._engine
