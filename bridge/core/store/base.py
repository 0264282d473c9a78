"""The `Store` protocol and the records it reads and writes, whatever the backend."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, NamedTuple, Protocol

from bridge.core.machine import PROBLEM_STATES, Event, State, transition

__all__ = [
    "DeadLetter",
    "Device",
    "OutboxEntry",
    "OutboxItem",
    "Store",
    "VersionKind",
    "dump_json",
    "next_state",
]

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

    async def retry(self, item_id: int, delay: float, error: str) -> None:
        """Release a claimed message to be delivered again after `delay` seconds."""
        ...

    async def outbox_size(self) -> int:
        """Return how many messages wait in the outbox, claimed or not."""
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


def dump_json(value: Mapping[str, Any]) -> str:
    """Encode a payload compactly and deterministically."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True)
