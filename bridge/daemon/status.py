"""`iot-bridge status`: where every device stands, read from the store."""

from __future__ import annotations

from typing import Any

from bridge.core.machine import State
from bridge.core.store import Store, open_store

__all__ = ["read_status", "render_status", "store_status"]


async def read_status(dsn: str, *, limit: int = 20) -> dict[str, Any]:
    """Counts per state, devices with a problem, dead letters and queued work."""
    async with open_store(dsn, existing=True) as store:
        return await store_status(store, limit=limit)


async def store_status(store: Store, *, limit: int = 20) -> dict[str, Any]:
    """What `read_status` reports, from a store already open (the status page keeps one)."""
    counts = await store.counts_by_state()
    problems = await store.problems(limit)
    letters = await store.dead_letters(limit)
    return {
        "devices": {state.value: counts[state] for state in State},
        "total": sum(counts.values()),
        "outbox": await store.outbox_size(),
        "problems": [
            {
                "device_id": d.device_id,
                "state": d.state.value,
                "reason": d.reason,
                "since": d.updated_at.isoformat(),
            }
            for d in problems
        ],
        "dead_letters": [
            {
                "id": letter.id,
                "source": letter.source,
                "reason": letter.reason,
                "at": letter.created_at.isoformat(),
            }
            for letter in letters
        ],
    }


def render_status(status: dict[str, Any]) -> str:
    """A short text report for a terminal."""
    lines = [f"{status['total']} devices, {status['outbox']} changes waiting"]
    width = max(len(state) for state in status["devices"])
    lines += [f"  {state:<{width}}  {count}" for state, count in status["devices"].items() if count]
    if status["problems"]:
        lines.append("devices with a problem:")
        lines += [f"  {p['device_id']}  {p['state']}: {p['reason']}" for p in status["problems"]]
    if status["dead_letters"]:
        lines.append("newest dead letters:")
        lines += [
            f"  #{d['id']} {d['at']} {d['source']}: {d['reason']}" for d in status["dead_letters"]
        ]
    return "\n".join(lines)
