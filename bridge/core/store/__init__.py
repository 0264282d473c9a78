"""Durable state of the bridge; `open_store(dsn)` picks the backend from the DSN scheme."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from bridge.core.store.base import (
    SEEDED,
    SYNC,
    ChangeSet,
    DeadLetter,
    Device,
    OutboxEntry,
    OutboxItem,
    Store,
    SyncMark,
    VersionKind,
    Wave,
    WaveDevice,
)
from bridge.core.store.postgres import PostgresStore
from bridge.core.store.sqlite import SqliteStore
from bridge.errors import StoreError

__all__ = [
    "BACKENDS",
    "SEEDED",
    "SYNC",
    "ChangeSet",
    "DeadLetter",
    "Device",
    "OutboxEntry",
    "OutboxItem",
    "PostgresStore",
    "SqliteStore",
    "Store",
    "SyncMark",
    "VersionKind",
    "Wave",
    "WaveDevice",
    "open_store",
]

BACKENDS: dict[str, type[SqliteStore | PostgresStore]] = {
    "sqlite": SqliteStore,
    "postgresql": PostgresStore,
    "postgres": PostgresStore,
}
"""DSN scheme -> store class."""


@asynccontextmanager
async def open_store(dsn: str, *, existing: bool = False) -> AsyncIterator[Store]:
    """Open the store `dsn` names, migrated to the current schema, and close it on exit.

    `existing=True` (read-only commands) refuses to create or migrate a store: it must be
    there already, at this bridge's schema version.
    """
    scheme = dsn.partition(":")[0].lower()
    backend = BACKENDS.get(scheme)
    if backend is None:
        known = ", ".join(sorted(BACKENDS))
        raise StoreError(f"unknown store DSN scheme {scheme!r} (known: {known})")
    store = backend.from_dsn(dsn)
    await store.open(existing=existing)
    try:
        yield store
    finally:
        await store.close()
