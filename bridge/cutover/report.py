"""`iot-bridge cutover report`: the waves as the store has them, for the HTML report."""

from __future__ import annotations

from datetime import UTC, datetime

from bridge.core.store import Store
from bridge.cutover.wave import WaveSpec, job_sent_key
from bridge.errors import WaveError
from bridge.reports.cutover import DeviceRow, WaveReport

__all__ = ["cutover_report"]


async def cutover_report(store: Store, wave: str | None = None) -> list[WaveReport]:
    """Every wave (or the one named), oldest first, with its devices and timings."""
    waves = await store.waves()
    if wave is not None:
        waves = [w for w in waves if w.name == wave]
        if not waves:
            raise WaveError(
                f"no wave named {wave!r}: `iot-bridge cutover status` lists them", wave=wave
            )
    found = []
    for current in waves:
        spec = WaveSpec.model_validate(current.spec)
        members = await store.wave_devices(current.name)
        devices = await store.get_devices([m.device_id for m in members])
        sent = await store.get_checkpoint(job_sent_key(current.name))
        sent_at = float(sent) if sent is not None else None
        rows = [
            DeviceRow(
                device_id=m.device_id,
                state=str(devices[m.device_id].state) if m.device_id in devices else None,
                outcome=m.outcome,
                reason=m.reason,
                decided_after=(
                    max(m.decided_at.timestamp() - sent_at, 0.0)
                    if m.outcome is not None and m.decided_at is not None and sent_at is not None
                    else None
                ),
            )
            for m in members
        ]
        found.append(
            WaveReport(
                name=current.name,
                state=str(current.state),
                reason=current.reason,
                job_id=current.job_id,
                success_threshold=spec.success_threshold,
                abort_threshold=spec.abort_threshold,
                deadline_seconds=spec.deadline_seconds,
                max_per_minute=spec.max_per_minute,
                group=spec.group,
                sent_at=datetime.fromtimestamp(sent_at, UTC) if sent_at is not None else None,
                devices=rows,
            )
        )
    return found
