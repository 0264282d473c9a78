"""The shared store: PostgreSQL through asyncpg, for several replicas (server clock, row locks)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Collection, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import asyncpg  # type: ignore[import-untyped]

from bridge.core.machine import PROBLEM_STATES, Event, State
from bridge.core.store import migrations
from bridge.core.store.base import (
    CHANGED_MOVES,
    MAX_TRANSITION_ATTEMPTS,
    SYNC,
    ChangeSet,
    DeadLetter,
    Device,
    OutboxEntry,
    OutboxItem,
    SyncMark,
    VersionKind,
    Wave,
    WaveDevice,
    apply_events,
    dump_json,
    next_state,
)
from bridge.core.view import DeviceView
from bridge.errors import StoreError

__all__ = ["PostgresStore"]

_MIGRATION_LOCK = 0x1B1D_6E00  # advisory lock key: one replica migrates, the others wait
_DEVICE_COLUMNS = (
    "device_id, state, reason, thing_version, shadow_versions, twin_etag, twin_version,"
    " revision, updated_at, lease_owner, lease_until, fingerprint"
)
# Enqueuers of one device take its advisory lock, so ids commit in order per device and a
# claimer's snapshot always sees a prefix of each device's queue.
_LOCK_DEVICE_QUEUE = "SELECT pg_advisory_xact_lock(hashtext($1))"
_INSERT_OUTBOX = "INSERT INTO outbox (device_id, kind, payload) VALUES ($1, $2, $3)"
# The same in one round trip: the lock row is produced before the new id is drawn.
_LOCKED_INSERT_OUTBOX = """WITH queue_lock AS (SELECT pg_advisory_xact_lock(hashtext($1)))
    INSERT INTO outbox (device_id, kind, payload) SELECT $1, $2, $3 FROM queue_lock
    RETURNING id"""
# Each device's oldest message is its only candidate; SKIP LOCKED lets replicas claim in
# parallel, and a row claimed meanwhile is rechecked against the WHERE after its lock.
_CLAIM = """WITH ready AS (
        SELECT id FROM outbox
        WHERE available_at <= now() AND (claimed_until IS NULL OR claimed_until <= now())
          AND NOT EXISTS (SELECT 1 FROM outbox AS earlier
                          WHERE earlier.device_id = outbox.device_id AND earlier.id < outbox.id)
        ORDER BY available_at, id LIMIT $2
        FOR UPDATE SKIP LOCKED)
    UPDATE outbox SET claimed_by = $1, claimed_until = now() + make_interval(secs => $3),
        attempts = attempts + 1
    FROM ready WHERE outbox.id = ready.id
    RETURNING outbox.id, device_id, kind, payload, attempts, last_error"""
_UPDATE_IF_UNCHANGED = """UPDATE devices SET state = $2, reason = $3, revision = $4 + 1,
    updated_at = now() WHERE device_id = $1 AND revision = $4"""
_TAKE_LEASE = """INSERT INTO partition_leases (partition, owner, lease_until)
    VALUES ($1, $2, now() + make_interval(secs => $3))
    ON CONFLICT (partition) DO UPDATE SET owner = excluded.owner,
        lease_until = excluded.lease_until
    WHERE partition_leases.owner = excluded.owner OR partition_leases.lease_until <= now()"""
_RECORD_VERSION = {
    VersionKind.SHADOW: """UPDATE devices SET updated_at = now(),
        shadow_versions = jsonb_set(shadow_versions, ARRAY[$3::text], to_jsonb($2::bigint))
        WHERE device_id = $1 AND coalesce((shadow_versions ->> $3::text)::bigint < $2, true)""",
    VersionKind.THING: """UPDATE devices SET thing_version = $2, updated_at = now()
        WHERE device_id = $1 AND coalesce(thing_version < $2, true)""",
    VersionKind.TWIN: """UPDATE devices SET twin_version = $2, updated_at = now(),
        twin_etag = coalesce($3, twin_etag)
        WHERE device_id = $1 AND coalesce(twin_version < $2, true)""",
}


# One pending SYNC per device is enough: it reads the newest view when it runs. The
# device's queue lock keeps ids in commit order, as every other enqueue does. The pending
# SYNC relied on is locked until this transaction commits: a worker's claim (SKIP LOCKED)
# passes it by until then, so it cannot read the view from before this change, write
# that and delete the SYNC; one claimed meanwhile is no longer pending once its lock is
# released, and a new SYNC is queued instead.
_ENQUEUE_SYNC = f"""WITH queue_lock AS (SELECT pg_advisory_xact_lock(hashtext($1))),
    pending AS (SELECT outbox.id FROM outbox, queue_lock
        WHERE device_id = $1 AND kind = '{SYNC}' AND claimed_by IS NULL FOR UPDATE OF outbox)
    INSERT INTO outbox (device_id, kind, payload) SELECT $1, '{SYNC}', '{{}}'::jsonb
    FROM queue_lock WHERE NOT EXISTS (SELECT 1 FROM pending)"""  # noqa: S608 - our constant
_CHANGED = (
    "UPDATE devices SET state = CASE state "  # noqa: S608 - built from our own enum values
    + " ".join(f"WHEN '{old}' THEN '{new}'" for old, new in CHANGED_MOVES.items())
    + " ELSE state END, revision = revision + 1, updated_at = now()"
    " WHERE device_id = ANY($1::text[])"
)
_UPSERT_VIEWS = """INSERT INTO devices (device_id, state, view)
    SELECT unnest($1::text[]), $3, unnest($2::text[])
    ON CONFLICT (device_id) DO UPDATE SET view = excluded.view, updated_at = now()"""


def _device(row: Mapping[str, Any]) -> Device:
    return Device(
        device_id=row["device_id"],
        state=State(row["state"]),
        reason=row["reason"],
        thing_version=row["thing_version"],
        shadow_versions=row["shadow_versions"],
        twin_etag=row["twin_etag"],
        twin_version=row["twin_version"],
        revision=row["revision"],
        updated_at=row["updated_at"],
        lease_owner=row["lease_owner"],
        lease_until=row["lease_until"],
        fingerprint=row["fingerprint"],
    )


_WAVE_COLUMNS = "name, state, spec, job_id, reason, created_at, updated_at"


def _wave(row: Mapping[str, Any]) -> Wave:
    return Wave(
        name=row["name"],
        state=row["state"],
        spec=json.loads(row["spec"]),
        job_id=row["job_id"],
        reason=row["reason"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


async def _use_json_codec(conn: Any) -> None:
    await conn.set_type_codec(
        "jsonb", encoder=dump_json, decoder=json.loads, schema="pg_catalog", format="text"
    )


class PostgresStore:
    """A `Store` in PostgreSQL for replicas sharing one database; see `Store` for contracts."""

    def __init__(self, dsn: str, *, pool_size: int = 10) -> None:
        self._dsn = dsn
        self._pool_size = pool_size
        self._pool: Any = None

    @classmethod
    def from_dsn(cls, dsn: str) -> PostgresStore:
        """Build from a `postgresql://user@host:port/database` DSN."""
        return cls(dsn)

    async def open(self, *, existing: bool = False) -> None:
        """Connect a pool and bring the schema up to date (`existing`: only check it)."""
        try:
            # A hung server must surface as an error, not stall the daemon silently.
            self._pool = await asyncpg.create_pool(
                self._dsn,
                min_size=1,
                max_size=self._pool_size,
                init=_use_json_codec,
                timeout=10,
                command_timeout=30,
            )
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise StoreError(f"cannot open PostgreSQL store: {exc}") from exc
        try:
            if existing:
                found = await self._fetch("SELECT to_regclass('schema_migrations')")
                version = await self.schema_version() if found[0][0] is not None else None
                migrations.check_current(version, migrations.POSTGRES, "the PostgreSQL store")
            else:
                await self._migrate()
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        """Close every connection of the pool."""
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    @asynccontextmanager
    async def _conn(self) -> AsyncIterator[Any]:
        if self._pool is None:
            raise StoreError("PostgreSQL store is not open")
        try:
            async with self._pool.acquire() as conn:
                yield conn
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise StoreError(f"PostgreSQL store: {exc}") from exc

    async def _fetch(self, sql: str, *args: Any) -> list[Any]:
        async with self._conn() as conn:
            return list(await conn.fetch(sql, *args))

    async def _execute(self, sql: str, *args: Any) -> str:
        async with self._conn() as conn:
            return str(await conn.execute(sql, *args))

    async def _migrate(self) -> None:
        async with self._conn() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
            await conn.execute(migrations.CREATE_SCHEMA_MIGRATIONS)
            current = await conn.fetchval("SELECT coalesce(MAX(version), 0) FROM schema_migrations")
            migrations.check_not_newer(current, migrations.POSTGRES, "PostgreSQL store")
            for step in migrations.POSTGRES:
                if step.version <= current:
                    continue
                for statement in step.statements:
                    await conn.execute(statement)
                await conn.execute(
                    "INSERT INTO schema_migrations VALUES ($1, $2, $3)",
                    step.version,
                    step.name,
                    datetime.now(UTC).isoformat(),
                )

    async def schema_version(self) -> int:
        rows = await self._fetch("SELECT coalesce(MAX(version), 0) FROM schema_migrations")
        return int(rows[0][0])

    async def add_device(self, device_id: str) -> bool:
        status = await self._execute(
            "INSERT INTO devices (device_id, state) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            device_id,
            State.DISCOVERED.value,
        )
        return status == "INSERT 0 1"

    async def get_device(self, device_id: str) -> Device | None:
        sql = f"SELECT {_DEVICE_COLUMNS} FROM devices WHERE device_id = $1"  # noqa: S608
        rows = await self._fetch(sql, device_id)
        return _device(rows[0]) if rows else None

    async def record_versions(
        self,
        device_id: str,
        kind: VersionKind,
        name: str,
        version: int,
        *,
        etag: str | None = None,
    ) -> bool:
        args: list[Any] = [device_id, version]
        if kind is not VersionKind.THING:
            args.append(name if kind is VersionKind.SHADOW else etag)
        async with self._conn() as conn:
            if await conn.execute(_RECORD_VERSION[kind], *args) == "UPDATE 1":
                return True
            if await conn.fetchval("SELECT 1 FROM devices WHERE device_id = $1", device_id):
                return False
        raise StoreError(f"unknown device {device_id}")

    async def transition(
        self,
        device_id: str,
        event: Event,
        *,
        reason: str | None = None,
        enqueue: Sequence[OutboxEntry] = (),
    ) -> State:
        # Optimistic: read without locking, write only if the revision is still the one read.
        async with self._conn() as conn:
            for _ in range(MAX_TRANSITION_ATTEMPTS):
                row = await conn.fetchrow(
                    "SELECT state, revision FROM devices WHERE device_id = $1", device_id
                )
                if row is None:
                    raise StoreError(f"unknown device {device_id}")
                state, kept_reason = next_state(device_id, row["state"], event, reason)
                update = (device_id, state.value, kept_reason, row["revision"])
                if not enqueue:
                    if await conn.execute(_UPDATE_IF_UNCHANGED, *update) == "UPDATE 1":
                        return state
                    continue
                async with conn.transaction():
                    await conn.execute(_LOCK_DEVICE_QUEUE, device_id)
                    if await conn.execute(_UPDATE_IF_UNCHANGED, *update) == "UPDATE 1":
                        await conn.executemany(
                            _INSERT_OUTBOX, [(device_id, e.kind, e.payload) for e in enqueue]
                        )
                        return state
        raise StoreError(f"device {device_id}: lost {MAX_TRANSITION_ATTEMPTS} races in a row")

    async def counts_by_state(self) -> dict[State, int]:
        counts = dict.fromkeys(State, 0)
        for state, count in await self._fetch("SELECT state, COUNT(*) FROM devices GROUP BY 1"):
            counts[State(state)] = count
        return counts

    async def devices_in_state(self, state: State, limit: int) -> list[Device]:
        sql = f"SELECT {_DEVICE_COLUMNS} FROM devices WHERE state = $1 ORDER BY updated_at LIMIT $2"  # noqa: S608
        return [_device(row) for row in await self._fetch(sql, state.value, limit)]

    async def problems(self, limit: int) -> list[Device]:
        sql = (
            f"SELECT {_DEVICE_COLUMNS} FROM devices WHERE state = ANY($1::text[])"  # noqa: S608
            " ORDER BY updated_at DESC LIMIT $2"
        )
        states = sorted(s.value for s in PROBLEM_STATES)
        return [_device(row) for row in await self._fetch(sql, states, limit)]

    async def enqueue(self, device_id: str, kind: str, payload: Mapping[str, Any]) -> int:
        async with self._conn() as conn:
            return int(await conn.fetchval(_LOCKED_INSERT_OUTBOX, device_id, kind, payload))

    async def claim(self, owner: str, limit: int, lease_seconds: float) -> list[OutboxItem]:
        rows = await self._fetch(_CLAIM, owner, limit, float(lease_seconds))
        return [OutboxItem(*row) for row in sorted(rows, key=lambda row: int(row["id"]))]

    async def renew_claims(self, owner: str, lease_seconds: float) -> int:
        status = await self._execute(
            "UPDATE outbox SET claimed_until = now() + make_interval(secs => $2)"
            " WHERE claimed_by = $1",
            owner,
            float(lease_seconds),
        )
        return _row_count(status)

    async def release_claims(self, owner: str) -> int:
        status = await self._execute(
            "UPDATE outbox SET claimed_by = NULL, claimed_until = NULL WHERE claimed_by = $1",
            owner,
        )
        return _row_count(status)

    async def ack(self, ids: Iterable[int]) -> None:
        await self._execute("DELETE FROM outbox WHERE id = ANY($1::bigint[])", list(ids))

    async def retry(self, item_id: int, delay: float, error: str) -> None:
        await self._execute(
            "UPDATE outbox SET claimed_by = NULL, claimed_until = NULL, last_error = $3,"
            " available_at = now() + make_interval(secs => $2) WHERE id = $1",
            item_id,
            float(delay),
            error,
        )

    async def outbox_size(self) -> int:
        return int((await self._fetch("SELECT COUNT(*) FROM outbox"))[0][0])

    async def queued(self, device_ids: Collection[str]) -> set[str]:
        rows = await self._fetch(
            "SELECT DISTINCT device_id FROM outbox WHERE kind = $1 AND device_id = ANY($2::text[])",
            SYNC,
            sorted(device_ids),
        )
        return {row["device_id"] for row in rows}

    async def dead_letter(self, source: str, reason: str, payload: Mapping[str, Any]) -> int:
        rows = await self._fetch(
            "INSERT INTO dead_letters (source, reason, payload) VALUES ($1, $2, $3) RETURNING id",
            source,
            reason,
            payload,
        )
        return int(rows[0][0])

    async def dead_letters(self, limit: int) -> list[DeadLetter]:
        rows = await self._fetch(
            "SELECT id, source, reason, payload, created_at FROM dead_letters"
            " ORDER BY id DESC LIMIT $1",
            limit,
        )
        return [DeadLetter(*row) for row in rows]

    async def get_checkpoint(self, name: str) -> str | None:
        rows = await self._fetch("SELECT value FROM checkpoints WHERE name = $1", name)
        return str(rows[0][0]) if rows else None

    async def set_checkpoint(self, name: str, value: str) -> None:
        await self._execute(
            "INSERT INTO checkpoints (name, value) VALUES ($1, $2) ON CONFLICT (name)"
            " DO UPDATE SET value = excluded.value, updated_at = now()",
            name,
            value,
        )

    async def get_devices(self, device_ids: Collection[str]) -> dict[str, Device]:
        sql = f"SELECT {_DEVICE_COLUMNS} FROM devices WHERE device_id = ANY($1::text[])"  # noqa: S608
        rows = await self._fetch(sql, list(device_ids))
        return {row["device_id"]: _device(row) for row in rows}

    async def get_views(self, device_ids: Collection[str]) -> dict[str, DeviceView]:
        rows = await self._fetch(
            "SELECT view FROM devices WHERE device_id = ANY($1::text[]) AND view IS NOT NULL",
            list(device_ids),
        )
        views = [DeviceView.from_json(json.loads(row[0])) for row in rows]
        return {view.device_id: view for view in views}

    async def views_after(self, after: str, limit: int) -> list[DeviceView]:
        rows = await self._fetch(
            "SELECT view FROM devices WHERE device_id > $1 AND view IS NOT NULL"
            " ORDER BY device_id LIMIT $2",
            after,
            limit,
        )
        return [DeviceView.from_json(json.loads(row[0])) for row in rows]

    async def fingerprints_after(self, after: str, limit: int) -> list[tuple[str, str]]:
        rows = await self._fetch(
            "SELECT device_id, fingerprint FROM devices WHERE device_id > $1"
            " AND fingerprint IS NOT NULL ORDER BY device_id LIMIT $2",
            after,
            limit,
        )
        return [(row[0], row[1]) for row in rows]

    async def save_changes(self, changes: ChangeSet) -> None:
        views = sorted(changes.views, key=lambda v: v.device_id)  # one lock order: no deadlock
        ids = [v.device_id for v in views]
        async with self._conn() as conn, conn.transaction():
            if views:
                texts = [dump_json(v.to_json()) for v in views]
                await conn.execute(_UPSERT_VIEWS, ids, texts, State.DISCOVERED.value)
                await conn.execute("DELETE FROM memberships WHERE device_id = ANY($1::text[])", ids)
                await conn.executemany(
                    "INSERT INTO memberships (group_name, device_id) VALUES ($1, $2)",
                    [(g, v.device_id) for v in views if v.exists for g in v.groups],
                )
            if changes.force:
                await conn.execute(
                    "UPDATE devices SET fingerprint = NULL WHERE device_id = ANY($1::text[])",
                    sorted(changes.force),
                )
            if changes.sync:
                await conn.execute(_CHANGED, sorted(changes.sync))
                await conn.executemany(_ENQUEUE_SYNC, [(d,) for d in sorted(changes.sync)])
            await conn.executemany(
                "INSERT INTO thing_groups (name, parent) VALUES ($1, $2)"
                " ON CONFLICT (name) DO UPDATE SET parent = excluded.parent",
                list(changes.groups.items()),
            )
            await conn.executemany(
                "DELETE FROM thing_groups WHERE name = $1", [(g,) for g in changes.deleted_groups]
            )
            await conn.executemany(
                "INSERT INTO dead_letters (source, reason, payload) VALUES ($1, $2, $3)",
                list(changes.dead_letters),
            )

    async def group_parents(self) -> dict[str, str | None]:
        rows = await self._fetch("SELECT name, parent FROM thing_groups")
        return {row[0]: row[1] for row in rows}

    async def members(self, groups: Collection[str]) -> list[str]:
        rows = await self._fetch(
            "SELECT DISTINCT device_id FROM memberships WHERE group_name = ANY($1::text[])"
            " ORDER BY 1",
            list(groups),
        )
        return [row[0] for row in rows]

    async def mark_provisioned(self, fingerprints: Mapping[str, str]) -> int:
        ids = sorted(fingerprints)
        status = await self._execute(
            "UPDATE devices SET state = $1, fingerprint = moved.fp, revision = revision + 1,"
            " updated_at = now() FROM unnest($2::text[], $3::text[]) AS moved (id, fp)"
            " WHERE devices.device_id = moved.id AND devices.state = $4",
            State.MIRRORED.value,
            ids,
            [fingerprints[i] for i in ids],
            State.DISCOVERED.value,
        )
        return int(status.split()[-1])

    async def finish(
        self,
        item: OutboxItem,
        events: Sequence[Event],
        *,
        fingerprint: str | None,
        reason: str | None = None,
    ) -> State:
        async with self._conn() as conn, conn.transaction():
            current = await conn.fetchval(
                "SELECT state FROM devices WHERE device_id = $1 FOR UPDATE", item.device_id
            )
            if current is None:
                raise StoreError(f"unknown device {item.device_id}")
            state = State(current)
            if events:
                state, kept = apply_events(item.device_id, state, events, reason)
                await conn.execute(
                    "UPDATE devices SET state = $2, reason = $3, revision = revision + 1,"
                    " updated_at = now() WHERE device_id = $1",
                    item.device_id,
                    state.value,
                    kept,
                )
            await conn.execute(
                "UPDATE devices SET fingerprint = $2 WHERE device_id = $1",
                item.device_id,
                fingerprint,
            )
            await conn.execute("DELETE FROM outbox WHERE id = $1", item.id)
            return state

    async def add_wave(self, wave: Wave, devices: Collection[str]) -> bool:
        async with self._conn() as conn, conn.transaction():
            inserted = await conn.execute(
                "INSERT INTO waves (name, state, spec, job_id, reason) VALUES ($1, $2, $3, $4, $5)"
                " ON CONFLICT (name) DO NOTHING",
                wave.name,
                wave.state,
                dump_json(wave.spec),
                wave.job_id,
                wave.reason,
            )
            if inserted != "INSERT 0 1":
                return False
            await conn.executemany(
                "INSERT INTO wave_devices (wave, device_id) VALUES ($1, $2)",
                [(wave.name, device_id) for device_id in devices],
            )
        return True

    async def get_wave(self, name: str) -> Wave | None:
        sql = f"SELECT {_WAVE_COLUMNS} FROM waves WHERE name = $1"  # noqa: S608 - our constant
        rows = await self._fetch(sql, name)
        return _wave(rows[0]) if rows else None

    async def waves(self) -> list[Wave]:
        sql = f"SELECT {_WAVE_COLUMNS} FROM waves ORDER BY created_at, name"  # noqa: S608
        return [_wave(row) for row in await self._fetch(sql)]

    async def update_wave(
        self,
        name: str,
        *,
        state: str,
        expected: Collection[str] = (),
        job_id: str | None = None,
        reason: str | None = None,
    ) -> bool:
        sql = (
            "UPDATE waves SET state = $1, job_id = coalesce($2, job_id),"
            " reason = coalesce($3, reason), updated_at = now() WHERE name = $4"
            " AND (cardinality($5::text[]) = 0 OR state = ANY($5::text[]))"
        )
        done = await self._execute(sql, state, job_id, reason, name, list(expected))
        return done == "UPDATE 1"

    async def wave_devices(self, name: str) -> list[WaveDevice]:
        rows = await self._fetch(
            "SELECT wave, device_id, outcome, reason, updated_at FROM wave_devices"
            " WHERE wave = $1 ORDER BY device_id",
            name,
        )
        return [
            WaveDevice(
                r["wave"],
                r["device_id"],
                r["outcome"],
                r["reason"],
                decided_at=r["updated_at"],
            )
            for r in rows
        ]

    async def record_outcome(
        self, name: str, device_id: str, outcome: str, reason: str | None
    ) -> None:
        await self._execute(
            "UPDATE wave_devices SET outcome = $1, reason = $2, updated_at = now()"
            " WHERE wave = $3 AND device_id = $4",
            outcome,
            reason,
            name,
            device_id,
        )

    async def sync_mark(self, device_id: str, direction: str, name: str = "") -> SyncMark | None:
        async with self._conn() as conn:
            row = await conn.fetchrow(
                "SELECT version, digest FROM sync_marks"
                " WHERE device_id = $1 AND direction = $2 AND name = $3",
                device_id,
                direction,
                name,
            )
        return SyncMark(device_id, direction, name, row[0], row[1]) if row else None

    async def set_sync_mark(self, mark: SyncMark) -> bool:
        async with self._conn() as conn:
            status = await conn.execute(
                "INSERT INTO sync_marks (device_id, direction, name, version, digest)"
                " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (device_id, direction, name) DO UPDATE"
                " SET version = excluded.version, digest = excluded.digest, updated_at = now()"
                " WHERE sync_marks.version < excluded.version",
                mark.device_id,
                mark.direction,
                mark.name,
                mark.version,
                mark.digest,
            )
        return bool(status == "INSERT 0 1")

    async def replace_fingerprint(
        self, device_id: str, expected: str | None, fingerprint: str
    ) -> bool:
        async with self._conn() as conn:
            status = await conn.execute(
                "UPDATE devices SET fingerprint = $3"
                " WHERE device_id = $1 AND fingerprint IS NOT DISTINCT FROM $2",
                device_id,
                expected,
                fingerprint,
            )
        return bool(status == "UPDATE 1")

    async def acquire_lease(self, partition: str, owner: str, seconds: float) -> bool:
        status = await self._execute(_TAKE_LEASE, partition, owner, float(seconds))
        return status == "INSERT 0 1"

    async def renew_lease(self, partition: str, owner: str, seconds: float) -> bool:
        status = await self._execute(
            "UPDATE partition_leases SET lease_until = now() + make_interval(secs => $3)"
            " WHERE partition = $1 AND owner = $2 AND lease_until > now()",
            partition,
            owner,
            float(seconds),
        )
        return status == "UPDATE 1"

    async def release_lease(self, partition: str, owner: str) -> None:
        await self._execute(
            "DELETE FROM partition_leases WHERE partition = $1 AND owner = $2", partition, owner
        )


def _row_count(status: str) -> int:
    """Rows an UPDATE touched, from asyncpg's command tag ("UPDATE 3")."""
    return int(status.rsplit(" ", 1)[-1])
