"""Turns the engine's plain counters into Prometheus metrics, every few seconds.

The core keeps ints and lists so it needs no Prometheus; this module owns the mapping.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from prometheus_client import Counter

from bridge.core.store import Store
from bridge.metrics import Metrics
from bridge.mirror.engine import Engine

__all__ = ["Exporter"]


class Exporter:
    """Copies engine stats into `metrics` (counters as deltas since the last export)."""

    def __init__(
        self,
        engine: Engine,
        store: Store,
        metrics: Metrics,
        *,
        external_changes: Callable[[], int] = lambda: 0,
        source_pending: Callable[[], int] = lambda: 0,
    ) -> None:
        self._engine = engine
        self._store = store
        self._metrics = metrics
        self._external_changes = external_changes  # twins changed behind the bridge's back
        self._source_pending = source_pending  # received from AWS, not yet stored
        self._seen: dict[tuple[str, str], int] = {}

    def _add(self, key: tuple[str, str], total: int, counter: Counter) -> None:
        delta = total - self._seen.get(key, 0)
        if delta > 0:
            counter.inc(delta)
            self._seen[key] = total

    async def export(self) -> None:
        """One export of every figure."""
        m, ingest, mirror = self._metrics, self._engine.ingest.stats, self._engine.mirror.stats
        for kind, total in ingest.received.items():
            self._add(("received", kind), total, m.events_received.labels(side="aws", kind=kind))
        for outcome, total in mirror.applied.items():
            counter = m.events_applied.labels(kind="sync", outcome=outcome)
            self._add(("applied", outcome), total, counter)
        self._add(
            ("stale", ""), ingest.stale, m.events_applied.labels(kind="event", outcome="stale")
        )
        self._add(("retries", ""), mirror.retries, m.retries.labels(side="azure", operation="sync"))
        self._add(
            ("rejected", ""), mirror.rejected, m.errors.labels(side="azure", reason="rejected")
        )
        self._add(("dead", "aws"), ingest.dead_letters, m.dead_letters.labels(side="aws"))
        self._add(("dead", "azure"), mirror.rejected, m.dead_letters.labels(side="azure"))
        self._add(("drift", "aws"), ingest.drift, m.drift.labels(side="aws"))
        self._add(("drift", "azure"), self._engine.target_drift, m.drift.labels(side="azure"))
        azure_drift = m.drift.labels(side="azure")
        self._add(("drift", "azure-at-write"), self._external_changes(), azure_drift)
        lags, mirror.lags[:] = list(mirror.lags), []
        for lag in lags:
            m.event_lag.observe(lag)
        for state, count in (await self._store.counts_by_state()).items():
            m.devices.labels(state=state.value).set(count)
        m.queue_depth.labels(queue="outbox").set(await self._store.outbox_size())
        m.queue_depth.labels(queue="in_flight").set(self._engine.mirror.busy)
        m.queue_depth.labels(queue="source").set(self._source_pending())

    async def run(self, every: float = 5.0) -> None:
        """Export every `every` seconds until cancelled."""
        while True:
            await self.export()
            await asyncio.sleep(every)
