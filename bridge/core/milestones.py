"""Moments in a device's migration that more than one service reads, kept as checkpoints.

Cutover writes them, and the relay and the reverse path (peers that may not import
cutover) read them.
"""

from __future__ import annotations

from bridge.core.store import Store

__all__ = ["cut_over_at", "finalized_at", "record_cut_over", "record_finalized"]


async def _record(store: Store, moment: str, device_id: str, at: float) -> None:
    await store.set_checkpoint(f"cutover:{moment}:{device_id}", repr(at))


async def _read(store: Store, moment: str, device_id: str) -> float | None:
    recorded = await store.get_checkpoint(f"cutover:{moment}:{device_id}")
    return float(recorded) if recorded is not None else None


async def record_finalized(store: Store, device_id: str, at: float) -> None:
    """Remember when `device_id` was finalized (seconds since the epoch)."""
    await _record(store, "finalized", device_id, at)


async def finalized_at(store: Store, device_id: str) -> float | None:
    """When `device_id` was finalized, if it was."""
    return await _read(store, "finalized", device_id)


async def record_cut_over(store: Store, device_id: str, at: float) -> None:
    """Remember when `device_id` was declared on Azure (seconds since the epoch)."""
    await _record(store, "cut_over", device_id, at)


async def cut_over_at(store: Store, device_id: str) -> float | None:
    """When `device_id` was last declared on Azure, if it was."""
    return await _read(store, "cut_over", device_id)
