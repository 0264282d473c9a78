"""Moments in a device's migration that more than one service reads, kept as checkpoints.

Cutover writes them, and the relay and the reverse path (peers that may not import
cutover) read them.
"""

from __future__ import annotations

from bridge.core.store import Store

__all__ = ["cut_over_at", "finalized_at", "record_cut_over", "record_finalized"]


def _finalized_key(device_id: str) -> str:
    return f"cutover:finalized:{device_id}"


async def record_finalized(store: Store, device_id: str, at: float) -> None:
    """Remember when `device_id` was finalized (seconds since the epoch)."""
    await store.set_checkpoint(_finalized_key(device_id), repr(at))


async def finalized_at(store: Store, device_id: str) -> float | None:
    """When `device_id` was finalized, if it was."""
    recorded = await store.get_checkpoint(_finalized_key(device_id))
    return float(recorded) if recorded is not None else None


def _cut_over_key(device_id: str) -> str:
    return f"cutover:cut_over:{device_id}"


async def record_cut_over(store: Store, device_id: str, at: float) -> None:
    """Remember when `device_id` was declared on Azure (seconds since the epoch)."""
    await store.set_checkpoint(_cut_over_key(device_id), repr(at))


async def cut_over_at(store: Store, device_id: str) -> float | None:
    """When `device_id` was last declared on Azure, if it was."""
    recorded = await store.get_checkpoint(_cut_over_key(device_id))
    return float(recorded) if recorded is not None else None
