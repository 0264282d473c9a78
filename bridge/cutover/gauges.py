"""What the waves look like now, as gauges: devices per outcome, state, executions.

The cutover service calls `WaveGauges.export` after every poll. Counts come from the
store, so every replica (and a restarted daemon) exports the same figures. A finished wave
(done or aborted) no longer changes: it is read once more, then left as it was.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Mapping, Sequence

from bridge.core.store import Store, Wave
from bridge.cutover.wave import ACTIVE, WaveState
from bridge.metrics import CUTOVER_EXECUTION_STATUSES, CUTOVER_OUTCOMES, Metrics

__all__ = ["PENDING", "WaveGauges"]

PENDING = "pending"  # a device of the wave without an outcome yet
_FINAL = frozenset({WaveState.DONE, WaveState.ABORTED})


class WaveGauges:
    """Sets the per-wave gauges of `Metrics` from the store."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics
        self._final: set[str] = set()

    async def export(self, store: Store, waves: Sequence[Wave]) -> None:
        """Set every wave's state and outcome counts; drop executions of inactive waves."""
        metrics = self._metrics
        for wave in waves:
            # Zero until the wave aborts, so the alert's increase() sees it happen.
            metrics.cutover_wave_aborts.labels(wave=wave.name)
            for state in WaveState:
                metrics.cutover_wave_state.labels(wave=wave.name, state=str(state)).set(
                    1 if wave.state == state else 0
                )
            if wave.name in self._final:
                continue
            members = await store.wave_devices(wave.name)
            counts = Counter(member.outcome or PENDING for member in members)
            for outcome in (*CUTOVER_OUTCOMES, PENDING):
                metrics.cutover_wave_devices.labels(wave=wave.name, outcome=outcome).set(
                    counts.get(outcome, 0)
                )
            if wave.state not in ACTIVE:
                self.forget_executions(wave.name)
            if wave.state in _FINAL:
                self._final.add(wave.name)

    def executions(self, wave: str, statuses: Mapping[str, str]) -> None:
        """Executions of an active wave's job by status (thing name -> AWS status)."""
        counts = Counter(status.lower() for status in statuses.values())
        for status in CUTOVER_EXECUTION_STATUSES:
            self._metrics.cutover_job_executions.labels(wave=wave, status=status).set(
                counts.get(status, 0)
            )

    def forget_executions(self, wave: str) -> None:
        """A wave no longer watched has no current executions to show."""
        for status in CUTOVER_EXECUTION_STATUSES:
            with contextlib.suppress(KeyError):
                self._metrics.cutover_job_executions.remove(wave, status)
