"""Moments in a device's migration that more than one service reads, kept as checkpoints.

Cutover writes them, and the reverse path (a peer that may not import cutover) reads them.
"""

from __future__ import annotations

from bridge.core.store import Store

__all__ = ["finalized_at", "record_finalized"]


def _finalized_key(device_id: str) -> str:
    return f"cutover:finalized:{device_id}"


async def record_finalized(store: Store, device_id: str, at: float) -> None:
    """Remember when `device_id` was finalized (seconds since the epoch)."""
    await store.set_checkpoint(_finalized_key(device_id), repr(at))


async def finalized_at(store: Store, device_id: str) -> float | None:
    """When `device_id` was finalized, if it was."""
    recorded = await store.get_checkpoint(_finalized_key(device_id))
    return float(recorded) if recorded is not None else None
