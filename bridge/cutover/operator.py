"""What an operator does to waves: plan, start, pause, resume, abort, roll back, look.

These only write the store; the daemon's `CutoverService` acts on what they wrote, so a
command works whether or not the daemon runs, and a restarted daemon carries on.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from bridge.core.store import Store, Wave
from bridge.cutover.wave import WaveSpec, WaveState
from bridge.errors import WaveError
from bridge.logging import get_logger

__all__ = ["MOVES", "plan_wave", "render_status", "set_wave_state", "wave_status"]

_log = get_logger("cutover.operator")

# command -> (the state it sets, the states it may set it from)
MOVES: dict[str, tuple[WaveState, tuple[WaveState, ...]]] = {
    "start": (WaveState.RUNNING, (WaveState.PLANNED, WaveState.PAUSED)),
    "resume": (WaveState.RUNNING, (WaveState.PAUSED,)),
    "pause": (WaveState.PAUSED, (WaveState.RUNNING,)),
    "abort": (WaveState.ABORTING, (WaveState.PLANNED, WaveState.RUNNING, WaveState.PAUSED)),
    # Only while devices may still be moving: a finished wave has nothing left to stop.
    "rollback": (
        WaveState.ROLLING_BACK,
        (WaveState.PLANNED, WaveState.RUNNING, WaveState.PAUSED, WaveState.ABORTING),
    ),
}


async def plan_wave(
    store: Store,
    name: str,
    *,
    devices: list[str],
    group: str | None,
    thing_type: str | None = None,
    query: str | None = None,
    search: Callable[[str], Awaitable[list[str]]] | None = None,
    **spec: Any,
) -> WaveSpec:
    """Store a new wave over `devices` plus the direct members of thing group `group`, the
    things of type `thing_type` and the things fleet indexing finds for `query` (`search`
    runs it); every selection given adds to the wave."""
    chosen = set(devices)
    if group is not None:
        chosen |= _found(await store.members([group]), f"thing group {group!r}", name)
    if thing_type is not None:
        typed = await _of_type(store, thing_type)
        chosen |= _found(typed, f"thing type {thing_type!r}", name)
    if query is not None:
        if search is None:
            raise WaveError("a fleet-index query needs AWS access to run it", wave=name)
        chosen |= _found(await search(query), f"fleet-index query {query!r}", name)
    devices = sorted(chosen)
    known = await store.get_devices(devices)
    unknown = sorted(set(devices) - set(known))
    if unknown:
        raise WaveError(
            f"wave {name!r}: devices unknown to the bridge: {', '.join(unknown[:10])}", wave=name
        )
    wave_spec = WaveSpec(devices=devices, group=group, thing_type=thing_type, query=query, **spec)
    wave = Wave(name=name, state=WaveState.PLANNED, spec=wave_spec.model_dump(mode="json"))
    if not await store.add_wave(wave, wave_spec.devices):
        raise WaveError(f"a wave named {name!r} exists already", wave=name)
    _log.info("cutover.wave_planned", wave=name, devices=len(wave_spec.devices), group=group)
    return wave_spec


def _found(found: list[str], what: str, wave: str) -> set[str]:
    if not found:
        raise WaveError(
            f"{what} matches no device the bridge knows of (has the mirror run?)", wave=wave
        )
    return set(found)


async def _of_type(store: Store, thing_type: str) -> list[str]:
    """Devices whose thing is of `thing_type`, from the mirror's views (one pass)."""
    found, after = [], ""
    while page := await store.views_after(after, 1000):
        after = page[-1].device_id
        found += [v.device_id for v in page if v.exists and v.thing_type == thing_type]
    return found


async def set_wave_state(store: Store, name: str, command: str) -> WaveState:
    """Do `command` (see MOVES) if the wave's state allows it; the daemon does the rest."""
    wave = await store.get_wave(name)
    if wave is None:
        raise WaveError(f"no wave named {name!r}: plan it first", wave=name)
    state, allowed = MOVES[command]
    if not await store.update_wave(name, state=state, expected=allowed):
        raise WaveError(
            f"wave {name!r} is {wave.state}; it can become {state} only from {', '.join(allowed)}",
            wave=name,
        )
    _log.info("cutover.wave_state_set", wave=name, state=str(state), was=wave.state)
    return state


async def wave_status(store: Store) -> list[dict[str, Any]]:
    """Every wave with its devices' current states, outcomes and reasons."""
    shown = []
    for wave in await store.waves():
        members = await store.wave_devices(wave.name)
        devices = await store.get_devices([m.device_id for m in members])
        rows = [
            {
                "device_id": m.device_id,
                "state": str(devices[m.device_id].state) if m.device_id in devices else None,
                "outcome": m.outcome,
                "reason": m.reason,
            }
            for m in members
        ]
        shown.append(
            {
                "name": wave.name,
                "state": wave.state,
                "job_id": wave.job_id,
                "reason": wave.reason,
                "spec": wave.spec,
                "outcomes": dict(Counter(row["outcome"] or "pending" for row in rows)),
                "devices": rows,
            }
        )
    return shown


def render_status(waves: list[dict[str, Any]]) -> str:
    """The waves as text for a terminal."""
    if not waves:
        return "no waves planned"
    lines = []
    for wave in waves:
        counts = ", ".join(f"{k} {v}" for k, v in sorted(wave["outcomes"].items()))
        lines.append(f"wave {wave['name']}: {wave['state']} ({counts})")
        if wave["reason"]:
            lines.append(f"  {wave['reason']}")
        lines.extend(
            f"  {row['device_id']:<32} {row['state'] or '?':<16} {row['outcome'] or 'pending':<12}"
            f" {row['reason'] or ''}".rstrip()
            for row in wave["devices"]
        )
    return "\n".join(lines)
