"""Versioned schema migrations: ordered SQL per backend, recorded in `schema_migrations`."""

from __future__ import annotations

from typing import NamedTuple

from bridge.errors import StoreError

__all__ = ["POSTGRES", "SQLITE", "Migration", "check_not_newer"]


class Migration(NamedTuple):
    """One schema step: applied once, in order, inside one transaction."""

    version: int
    name: str
    statements: tuple[str, ...]


# Never edit an applied migration: append a new one, so every database converges.
SQLITE: tuple[Migration, ...] = (
    Migration(
        1,
        "initial",
        (
            """CREATE TABLE devices (
                device_id TEXT PRIMARY KEY,
                state TEXT NOT NULL,
                reason TEXT,
                thing_version INTEGER,
                shadow_versions TEXT NOT NULL DEFAULT '{}',
                twin_etag TEXT,
                twin_version INTEGER,
                revision INTEGER NOT NULL DEFAULT 0,
                updated_at REAL NOT NULL,
                lease_owner TEXT,
                lease_until REAL)""",
            "CREATE INDEX devices_by_state ON devices (state, updated_at)",
            """CREATE TABLE outbox (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                device_id TEXT NOT NULL,
                kind TEXT NOT NULL,
                payload TEXT NOT NULL,
                created_at REAL NOT NULL,
                available_at REAL NOT NULL,
                attempts INTEGER NOT NULL DEFAULT 0,
                last_error TEXT,
                claimed_by TEXT,
                claimed_until REAL)""",
            "CREATE INDEX outbox_by_device ON outbox (device_id, id)",
            "CREATE INDEX outbox_by_readiness ON outbox (available_at, id)",
            """CREATE TABLE dead_letters (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                source TEXT NOT NULL,
                reason TEXT NOT NULL,
                payload TEXT NOT NULL,
                created_at REAL NOT NULL)""",
            """CREATE TABLE checkpoints (
                name TEXT PRIMARY KEY, value TEXT NOT NULL, updated_at REAL NOT NULL)""",
            """CREATE TABLE partition_leases (
                partition TEXT PRIMARY KEY, owner TEXT NOT NULL, lease_until REAL NOT NULL)""",
        ),
    ),
    Migration(
        2,
        "mirror",
        (
            "ALTER TABLE devices ADD COLUMN view TEXT",
            "ALTER TABLE devices ADD COLUMN fingerprint TEXT",
            """CREATE TABLE memberships (
                group_name TEXT NOT NULL, device_id TEXT NOT NULL,
                PRIMARY KEY (group_name, device_id))""",
            "CREATE INDEX memberships_by_device ON memberships (device_id)",
            "CREATE TABLE thing_groups (name TEXT PRIMARY KEY, parent TEXT)",
        ),
    ),
    Migration(
        3,
        "cutover waves",
        (
            """CREATE TABLE waves (
                name TEXT PRIMARY KEY,
                state TEXT NOT NULL,
                spec TEXT NOT NULL,
                job_id TEXT,
                reason TEXT,
                created_at REAL NOT NULL,
                updated_at REAL NOT NULL)""",
            """CREATE TABLE wave_devices (
                wave TEXT NOT NULL REFERENCES waves (name),
                device_id TEXT NOT NULL,
                outcome TEXT,
                reason TEXT,
                updated_at REAL NOT NULL,
                PRIMARY KEY (wave, device_id))""",
            "CREATE INDEX wave_devices_by_device ON wave_devices (device_id)",
        ),
    ),
    Migration(
        4,
        "reverse sync marks",
        (
            """CREATE TABLE sync_marks (
                device_id TEXT NOT NULL,
                direction TEXT NOT NULL,
                name TEXT NOT NULL,
                version INTEGER NOT NULL,
                digest TEXT,
                updated_at REAL NOT NULL,
                PRIMARY KEY (device_id, direction, name))""",
        ),
    ),
)

POSTGRES: tuple[Migration, ...] = (
    Migration(
        1,
        "initial",
        (
            """CREATE TABLE devices (
                device_id text PRIMARY KEY,
                state text NOT NULL,
                reason text,
                thing_version bigint,
                shadow_versions jsonb NOT NULL DEFAULT '{}',
                twin_etag text,
                twin_version bigint,
                revision bigint NOT NULL DEFAULT 0,
                updated_at timestamptz NOT NULL DEFAULT now(),
                lease_owner text,
                lease_until timestamptz)""",
            "CREATE INDEX devices_by_state ON devices (state, updated_at)",
            """CREATE TABLE outbox (
                id bigserial PRIMARY KEY,
                device_id text NOT NULL,
                kind text NOT NULL,
                payload jsonb NOT NULL,
                created_at timestamptz NOT NULL DEFAULT now(),
                available_at timestamptz NOT NULL DEFAULT now(),
                attempts integer NOT NULL DEFAULT 0,
                last_error text,
                claimed_by text,
                claimed_until timestamptz)""",
            "CREATE INDEX outbox_by_device ON outbox (device_id, id)",
            "CREATE INDEX outbox_by_readiness ON outbox (available_at, id)",
            """CREATE TABLE dead_letters (
                id bigserial PRIMARY KEY,
                source text NOT NULL,
                reason text NOT NULL,
                payload jsonb NOT NULL,
                created_at timestamptz NOT NULL DEFAULT now())""",
            """CREATE TABLE checkpoints (
                name text PRIMARY KEY, value text NOT NULL,
                updated_at timestamptz NOT NULL DEFAULT now())""",
            """CREATE TABLE partition_leases (
                partition text PRIMARY KEY, owner text NOT NULL,
                lease_until timestamptz NOT NULL)""",
        ),
    ),
    Migration(
        2,
        "mirror",
        (
            "ALTER TABLE devices ADD COLUMN view text",
            "ALTER TABLE devices ADD COLUMN fingerprint text",
            """CREATE TABLE memberships (
                group_name text NOT NULL, device_id text NOT NULL,
                PRIMARY KEY (group_name, device_id))""",
            "CREATE INDEX memberships_by_device ON memberships (device_id)",
            "CREATE TABLE thing_groups (name text PRIMARY KEY, parent text)",
        ),
    ),
    Migration(
        3,
        "cutover waves",
        (
            """CREATE TABLE waves (
                name text PRIMARY KEY,
                state text NOT NULL,
                spec text NOT NULL,
                job_id text,
                reason text,
                created_at timestamptz NOT NULL DEFAULT now(),
                updated_at timestamptz NOT NULL DEFAULT now())""",
            """CREATE TABLE wave_devices (
                wave text NOT NULL REFERENCES waves (name),
                device_id text NOT NULL,
                outcome text,
                reason text,
                updated_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (wave, device_id))""",
            "CREATE INDEX wave_devices_by_device ON wave_devices (device_id)",
        ),
    ),
    Migration(
        4,
        "reverse sync marks",
        (
            """CREATE TABLE sync_marks (
                device_id text NOT NULL,
                direction text NOT NULL,
                name text NOT NULL,
                version bigint NOT NULL,
                digest text,
                updated_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (device_id, direction, name))""",
        ),
    ),
)

CREATE_SCHEMA_MIGRATIONS = """CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"""


def check_not_newer(found: int, migrations: tuple[Migration, ...], where: str) -> None:
    """Raise `StoreError` when the database was migrated by a newer bridge than this one."""
    known = migrations[-1].version
    if found > known:
        raise StoreError(
            f"{where}: database schema version {found} is newer than this bridge knows "
            f"({known}); upgrade iot-bridge or point it at another database"
        )


def check_current(found: int | None, migrations: tuple[Migration, ...], where: str) -> None:
    """For read-only commands: the store must exist at exactly this bridge's schema version."""
    if found is None:
        raise StoreError(f"{where} holds no iot-bridge store (no schema_migrations table)")
    check_not_newer(found, migrations, where)
    known = migrations[-1].version
    if found < known:
        raise StoreError(
            f"{where} has schema version {found} and this bridge reads {known}: start "
            "`iot-bridge run` once to migrate it"
        )
