"""The `Store` protocol and the records it reads and writes, whatever the backend."""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, NamedTuple, Protocol

from bridge.core.machine import PROBLEM_STATES, TRANSITIONS, Event, State, transition
from bridge.core.view import DeviceView

__all__ = [
    "CHANGED_MOVES",
    "SEEDED",
    "SYNC",
    "ChangeSet",
    "DeadLetter",
    "Device",
    "OutboxEntry",
    "OutboxItem",
    "Store",
    "SyncMark",
    "VersionKind",
    "Wave",
    "WaveDevice",
    "apply_events",
    "dump_json",
    "next_state",
]

SYNC = "sync"
"""Outbox kind: bring the device's target up to date with its stored view (coalesced)."""

SEEDED = "initial_sync.seeded"
"""Checkpoint: the mirror's initial read of the AWS estate is in the store (the relay
waits for it, so a device is never dead-lettered as unknown only because the store is new)."""

CHANGED_MOVES: Mapping[str, str] = {
    state.value: moves[Event.CHANGED].value
    for state, moves in TRANSITIONS.items()
    if Event.CHANGED in moves and moves[Event.CHANGED] is not state
}
"""States that CHANGED moves elsewhere (MIRRORED -> SYNCING...); others stay where they are."""

# Optimistic writers retry on a lost race; each round lets at least one writer through.
MAX_TRANSITION_ATTEMPTS = 100


class VersionKind(StrEnum):
    """Which version counter an event carries, for stale-event detection."""

    THING = "thing"  # AWS thing versionNumber
    SHADOW = "shadow"  # AWS shadow version, per shadow name ("" is the classic shadow)
    TWIN = "twin"  # IoT Hub twin $version


@dataclass(frozen=True, slots=True)
class Device:
    """One device as the store knows it."""

    device_id: str
    state: State
    reason: str | None
    thing_version: int | None
    shadow_versions: Mapping[str, int]
    twin_etag: str | None
    twin_version: int | None
    revision: int  # bumped by every transition; the optimistic-concurrency token
    updated_at: datetime
    lease_owner: str | None = None
    lease_until: datetime | None = None
    fingerprint: str | None = None  # digest of what was last written to the target


class OutboxEntry(NamedTuple):
    """A message to enqueue together with a transition."""

    kind: str
    payload: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """A claimed outbox message; ack it when delivered, or retry it."""

    id: int
    device_id: str
    kind: str
    payload: dict[str, Any]
    attempts: int  # deliveries so far, this one included
    last_error: str | None = None


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """Something the bridge gave up on, kept for an operator."""

    id: int
    source: str
    reason: str
    payload: dict[str, Any]
    created_at: datetime = field(compare=False)


@dataclass(frozen=True, slots=True)
class SyncMark:
    """The newest version one direction of a sync carried for a device, and a digest of it.

    `direction` names what was carried (such as `twin_reported`: the twin's reported
    `$version` written to AWS); `name` tells parts apart (a shadow name, "" for none).
    """

    device_id: str
    direction: str
    name: str
    version: int
    digest: str | None = None


@dataclass(frozen=True, slots=True)
class Wave:
    """A cutover wave as the store keeps it; `spec` is the cutover step's own document."""

    name: str
    state: str
    spec: dict[str, Any]
    job_id: str | None = None
    reason: str | None = None
    created_at: datetime | None = field(default=None, compare=False)
    updated_at: datetime | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class WaveDevice:
    """One device of a wave: how it ended in that wave (None while undecided) and why."""

    wave: str
    device_id: str
    outcome: str | None
    reason: str | None
    # When the outcome was written (when the device was added, while undecided).
    decided_at: datetime | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class ChangeSet:
    """What one batch of source events changes, written in one transaction.

    Devices in `sync` get CHANGED (where the state machine moves on it) and one pending
    SYNC message (an unclaimed one already queued is enough). `force` devices forget
    their fingerprint so the next sync writes even if the bridge thinks the target is
    current (drift found by anti-entropy).
    """

    views: Sequence[DeviceView] = ()
    sync: Collection[str] = ()
    force: Collection[str] = ()
    groups: Mapping[str, str | None] = field(default_factory=dict)
    deleted_groups: Collection[str] = ()
    dead_letters: Sequence[tuple[str, str, Mapping[str, Any]]] = ()

    def __bool__(self) -> bool:
        return bool(
            self.views
            or self.sync
            or self.force
            or self.groups
            or self.deleted_groups
            or self.dead_letters
        )


class Store(Protocol):
    """Durable state of the bridge: devices, outbox, dead letters, checkpoints and leases."""

    async def schema_version(self) -> int:
        """Return the schema version the database is at."""
        ...

    async def add_device(self, device_id: str) -> bool:
        """Insert a device in DISCOVERED; return False when it was already known."""
        ...

    async def get_device(self, device_id: str) -> Device | None:
        """Return the device, or None when unknown."""
        ...

    async def record_versions(
        self,
        device_id: str,
        kind: VersionKind,
        name: str,
        version: int,
        *,
        etag: str | None = None,
    ) -> bool:
        """Remember `version` atomically; return False when it is not newer (stale/duplicate)."""
        ...

    async def transition(
        self,
        device_id: str,
        event: Event,
        *,
        reason: str | None = None,
        enqueue: Sequence[OutboxEntry] = (),
    ) -> State:
        """Apply `event` and enqueue `enqueue` in one transaction; return the new state."""
        ...

    async def counts_by_state(self) -> dict[State, int]:
        """Return how many devices are in each state (every state present)."""
        ...

    async def devices_in_state(self, state: State, limit: int) -> list[Device]:
        """Return up to `limit` devices in `state`, oldest update first."""
        ...

    async def problems(self, limit: int) -> list[Device]:
        """Return up to `limit` failed or rolled-back devices with their reasons."""
        ...

    async def enqueue(self, device_id: str, kind: str, payload: Mapping[str, Any]) -> int:
        """Append a message to the device's outbox queue; return its id."""
        ...

    async def claim(self, owner: str, limit: int, lease_seconds: float) -> list[OutboxItem]:
        """Claim up to `limit` ready messages, each device's oldest, until acked or expired."""
        ...

    async def ack(self, ids: Iterable[int]) -> None:
        """Delete delivered messages; after an expired claim a message may go out twice."""
        ...

    async def renew_claims(self, owner: str, lease_seconds: float) -> int:
        """Extend every claim `owner` holds to `lease_seconds` from now; return how many.

        A live worker renews while its writes run, so a lease can be short (a dead one's
        claims are free within seconds) without being sized for the slowest write.
        """
        ...

    async def release_claims(self, owner: str) -> int:
        """Free every claim `owner` holds; return how many (a restart takes them back)."""
        ...

    async def retry(self, item_id: int, delay: float, error: str) -> None:
        """Release a claimed message to be delivered again after `delay` seconds."""
        ...

    async def outbox_size(self) -> int:
        """Return how many messages wait in the outbox, claimed or not."""
        ...

    async def queued(self, device_ids: Collection[str]) -> set[str]:
        """Return which of these devices have a SYNC message waiting, claimed or not."""
        ...

    async def dead_letter(self, source: str, reason: str, payload: Mapping[str, Any]) -> int:
        """Keep something the bridge gave up on; return its id."""
        ...

    async def dead_letters(self, limit: int) -> list[DeadLetter]:
        """Return up to `limit` dead letters, newest first."""
        ...

    async def get_checkpoint(self, name: str) -> str | None:
        """Return the checkpoint value stored under `name`."""
        ...

    async def set_checkpoint(self, name: str, value: str) -> None:
        """Store a checkpoint value, replacing the previous one."""
        ...

    async def get_devices(self, device_ids: Collection[str]) -> dict[str, Device]:
        """Return those of the devices that are known."""
        ...

    async def get_views(self, device_ids: Collection[str]) -> dict[str, DeviceView]:
        """Return the stored views of those devices that have one."""
        ...

    async def views_after(self, after: str, limit: int) -> list[DeviceView]:
        """Return up to `limit` stored views with device ids above `after`, in id order."""
        ...

    async def fingerprints_after(self, after: str, limit: int) -> list[tuple[str, str]]:
        """Return up to `limit` (device id, fingerprint) of devices written to the target."""
        ...

    async def save_changes(self, changes: ChangeSet) -> None:
        """Apply a batch of source changes atomically (see `ChangeSet`)."""
        ...

    async def group_parents(self) -> dict[str, str | None]:
        """Return every known thing group and its parent."""
        ...

    async def members(self, groups: Collection[str]) -> list[str]:
        """Return the devices that are direct members of any of `groups`."""
        ...

    async def mark_provisioned(self, fingerprints: Mapping[str, str]) -> int:
        """Devices created outside the outbox (an import job): DISCOVERED -> MIRRORED with
        their fingerprints; return how many moved (others had moved on already)."""
        ...

    async def finish(
        self,
        item: OutboxItem,
        events: Sequence[Event],
        *,
        fingerprint: str | None,
        reason: str | None = None,
    ) -> State:
        """Apply `events` in order, store `fingerprint` and ack `item`, atomically."""
        ...

    async def add_wave(self, wave: Wave, devices: Collection[str]) -> bool:
        """Insert a wave and its devices; return False when a wave of that name exists."""
        ...

    async def get_wave(self, name: str) -> Wave | None:
        """Return the wave, or None when unknown."""
        ...

    async def waves(self) -> list[Wave]:
        """Return every wave, oldest first."""
        ...

    async def update_wave(
        self,
        name: str,
        *,
        state: str,
        expected: Collection[str] = (),
        job_id: str | None = None,
        reason: str | None = None,
    ) -> bool:
        """Set the wave's state (and job id, reason when given) if its state is one of
        `expected` (any when empty); return whether it changed."""
        ...

    async def wave_devices(self, name: str) -> list[WaveDevice]:
        """Return the wave's devices with their outcomes, in id order."""
        ...

    async def record_outcome(
        self, name: str, device_id: str, outcome: str, reason: str | None
    ) -> None:
        """Remember how `device_id` ended in wave `name`, and why."""
        ...

    async def sync_mark(self, device_id: str, direction: str, name: str = "") -> SyncMark | None:
        """Return what `direction` last carried for the device (and `name`), if anything."""
        ...

    async def set_sync_mark(self, mark: SyncMark) -> bool:
        """Remember `mark` when its version is newer than the one kept; return whether it was."""
        ...

    async def replace_fingerprint(
        self, device_id: str, expected: str | None, fingerprint: str
    ) -> bool:
        """Set the device's fingerprint if it still is `expected`; return whether it was."""
        ...

    async def acquire_lease(self, partition: str, owner: str, seconds: float) -> bool:
        """Take or extend the partition lease if it is free, expired or already ours."""
        ...

    async def renew_lease(self, partition: str, owner: str, seconds: float) -> bool:
        """Extend our unexpired lease; return False when it was lost."""
        ...

    async def release_lease(self, partition: str, owner: str) -> None:
        """Give the lease up if we hold it."""
        ...


def next_state(
    device_id: str, current: str, event: Event, reason: str | None
) -> tuple[State, str | None]:
    """Return the state and reason to store after `event`; reasons stay only on problems."""
    after = transition(State(current), event, device_id=device_id)
    if after not in PROBLEM_STATES:
        return after, None
    return after, reason or str(event)


def apply_events(
    device_id: str, current: str, events: Sequence[Event], reason: str | None
) -> tuple[State, str | None]:
    """Return the state and reason after applying `events` in order from `current`."""
    state, kept = State(current), None
    for event in events:
        state, kept = next_state(device_id, state, event, reason)
    return state, kept


def dump_json(value: Mapping[str, Any]) -> str:
    """Encode a payload compactly and deterministically."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True)
