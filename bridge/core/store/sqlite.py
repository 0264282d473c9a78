"""The embedded store: one SQLite file, one writer at a time (zero setup, one replica)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import time
from collections.abc import AsyncIterator, Collection, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiosqlite

from bridge.core.machine import PROBLEM_STATES, Event, State
from bridge.core.store import migrations
from bridge.core.store.base import (
    CHANGED_MOVES,
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

__all__ = ["SqliteStore"]

# How long opening or writing waits for another connection on the same file.
_BUSY_SECONDS = 10.0

_DEVICE_COLUMNS = (
    "device_id, state, reason, thing_version, shadow_versions, twin_etag, twin_version,"
    " revision, updated_at, lease_owner, lease_until, fingerprint"
)
_INSERT_OUTBOX = (
    "INSERT INTO outbox (device_id, kind, payload, created_at, available_at) VALUES (?, ?, ?, ?, ?)"
)
# Each device's oldest message is its only candidate, so a device never has two in flight.
_CLAIMABLE = """SELECT id, device_id, kind, payload, attempts, last_error FROM outbox
    WHERE available_at <= :now AND (claimed_until IS NULL OR claimed_until <= :now)
      AND NOT EXISTS (SELECT 1 FROM outbox AS earlier
                      WHERE earlier.device_id = outbox.device_id AND earlier.id < outbox.id)
    ORDER BY available_at, id LIMIT :limit"""
_RECORD_VERSION = {
    VersionKind.SHADOW: """UPDATE devices SET updated_at = :now,
        shadow_versions = json_set(shadow_versions, :extra, :version) WHERE device_id = :device_id
        AND coalesce(json_extract(shadow_versions, :extra) < :version, 1)""",
    VersionKind.THING: """UPDATE devices SET thing_version = :version, updated_at = :now
        WHERE device_id = :device_id AND coalesce(thing_version < :version, 1)""",
    VersionKind.TWIN: """UPDATE devices SET twin_version = :version, updated_at = :now,
        twin_etag = coalesce(:extra, twin_etag)
        WHERE device_id = :device_id AND coalesce(twin_version < :version, 1)""",
}
_TAKE_LEASE = """INSERT INTO partition_leases (partition, owner, lease_until) VALUES (?, ?, ?)
    ON CONFLICT (partition) DO UPDATE SET owner = excluded.owner,
        lease_until = excluded.lease_until
    WHERE partition_leases.owner = excluded.owner OR partition_leases.lease_until <= ?"""


# One pending SYNC per device is enough: it reads the newest view when it runs.
_ENQUEUE_SYNC = f"""INSERT INTO outbox (device_id, kind, payload, created_at, available_at)
    SELECT ?1, '{SYNC}', '{{}}', ?2, ?2 WHERE NOT EXISTS (
        SELECT 1 FROM outbox WHERE device_id = ?1 AND kind = '{SYNC}' AND claimed_by IS NULL)"""  # noqa: S608 - our constant
_CHANGED = (
    "UPDATE devices SET state = CASE state "  # noqa: S608 - built from our own enum values
    + " ".join(f"WHEN '{old}' THEN '{new}'" for old, new in CHANGED_MOVES.items())
    + " ELSE state END, revision = revision + 1, updated_at = ? WHERE device_id = ?"
)
_UPSERT_VIEW = """INSERT INTO devices (device_id, state, updated_at, view) VALUES (?, ?, ?, ?)
    ON CONFLICT (device_id) DO UPDATE SET view = excluded.view, updated_at = excluded.updated_at"""


def _when(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


def _device(row: sqlite3.Row) -> Device:
    return Device(
        device_id=row[0],
        state=State(row[1]),
        reason=row[2],
        thing_version=row[3],
        shadow_versions=json.loads(row[4]),
        twin_etag=row[5],
        twin_version=row[6],
        revision=row[7],
        updated_at=datetime.fromtimestamp(row[8], UTC),
        lease_owner=row[9],
        lease_until=_when(row[10]),
        fingerprint=row[11],
    )


_WAVE_COLUMNS = "name, state, spec, job_id, reason, created_at, updated_at"


def _wave(row: sqlite3.Row) -> Wave:
    return Wave(
        name=row[0],
        state=row[1],
        spec=json.loads(row[2]),
        job_id=row[3],
        reason=row[4],
        created_at=_when(row[5]),
        updated_at=_when(row[6]),
    )


def _missing(path: str) -> str | None:
    """The absolute path of a store file that is not there, or None when it is."""
    where = Path(path)
    return None if where.is_file() else str(where.resolve())


class SqliteStore:
    """A `Store` in one SQLite file (WAL, `synchronous=FULL`); see `Store` for contracts."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._db: aiosqlite.Connection | None = None
        # One connection serves every task: the lock keeps their transactions apart.
        self._lock = asyncio.Lock()

    @classmethod
    def from_dsn(cls, dsn: str) -> SqliteStore:
        """Build from `sqlite:///relative.db` or `sqlite:////absolute/path.db`."""
        prefix = "sqlite:///"
        if not dsn.startswith(prefix) or len(dsn) == len(prefix):
            raise StoreError(f"not a SQLite DSN (want sqlite:///path): {dsn!r}")
        return cls(dsn.removeprefix(prefix))

    async def open(self, *, existing: bool = False) -> None:
        """Connect, set durability pragmas and bring the schema up to date.

        `existing`: open only a store that is there at the current schema version, and
        change nothing (read-only commands must not create a store where none was).
        """
        if existing and (missing := await asyncio.to_thread(_missing, self._path)):
            raise StoreError(
                f"no store at {missing}: nothing has run with this BRIDGE_STORE__DSN, "
                "or it points elsewhere"
            )
        connection = aiosqlite.connect(self._path, isolation_level=None)
        try:
            try:
                self._db = await connection
            except BaseException:
                # aiosqlite stops its worker on a failed connect but does not wait for it;
                # the worker then reports to a loop that may be closed by then. Wait here.
                worker = getattr(connection, "_thread", None)
                if worker is not None:
                    await asyncio.to_thread(worker.join, 5)
                raise
            # A second store on the same file (a CLI next to the daemon) waits, not fails.
            await self._db.execute(f"PRAGMA busy_timeout={int(_BUSY_SECONDS * 1000)}")
            await self._switch_to_wal()
            # FULL syncs the WAL on every commit: "no message lost" must hold through a power
            # cut too, not only a process crash (NORMAL would be enough for that alone).
            await self._db.execute("PRAGMA synchronous=FULL")
            if existing:
                migrations.check_current(await self._version(), migrations.SQLITE, self._path)
            else:
                await self._migrate()
        except BaseException as exc:
            await self.close()
            if isinstance(exc, sqlite3.Error | OSError):
                raise StoreError(f"cannot open SQLite store {self._path}: {exc}") from exc
            raise

    async def _switch_to_wal(self) -> None:
        """Put the file in WAL mode, waiting out another connection that holds it.

        SQLite answers a journal-mode change with "database is locked" at once, without
        its busy handler, while another connection is creating or migrating the same new
        file (measured: one concurrent open in ten failed), so a daemon started beside a
        CLI waits here instead of failing to start.
        """
        assert self._db is not None
        deadline = asyncio.get_running_loop().time() + _BUSY_SECONDS
        delay = 0.01
        while True:
            try:
                await self._db.execute("PRAGMA journal_mode=WAL")
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or asyncio.get_running_loop().time() > deadline:
                    raise
            else:
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.25)

    async def close(self) -> None:
        """Close the connection."""
        if self._db is not None:
            await self._db.close()
            self._db = None

    @asynccontextmanager
    async def _tx(self, begin: str = "BEGIN IMMEDIATE") -> AsyncIterator[aiosqlite.Connection]:
        # BEGIN IMMEDIATE takes the write lock up front: read-check-write needs no retry loop.
        async with self._lock:
            if self._db is None:
                raise StoreError("SQLite store is not open")
            db = self._db
            try:
                # Inside the try: a task cancelled while BEGIN runs in aiosqlite's thread
                # must still roll back, or the connection stays inside that transaction.
                await db.execute(begin)
                yield db
                await db.execute("COMMIT")
            except BaseException as exc:
                # A cancelled COMMIT may have finished in aiosqlite's thread: nothing to undo.
                with contextlib.suppress(sqlite3.Error):
                    await db.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise StoreError(f"SQLite store {self._path}: {exc}") from exc
                raise

    async def _rows(self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> list[Any]:
        async with self._tx("BEGIN") as db:
            return list(await db.execute_fetchall(sql, params))

    async def _rows_in(self, sql: str, values: Collection[str], *params: Any) -> list[Any]:
        """Rows of `sql` for every value, its `{marks}` bound to them 500 at a time (SQLite caps
        bound parameters per statement); `params` bind before them."""
        rows: list[Any] = []
        items = list(values)
        for start in range(0, len(items), 500):
            chunk = items[start : start + 500]
            statement = sql.format(marks=",".join("?" * len(chunk)))
            rows.extend(await self._rows(statement, [*params, *chunk]))
        return rows

    async def _write(self, sql: str, params: Sequence[Any]) -> tuple[int, int]:
        """Run one write statement in its own transaction; return (rowcount, lastrowid)."""
        async with self._tx() as db:
            cursor = await db.execute(sql, params)
            return cursor.rowcount, cursor.lastrowid or 0

    async def _migrate(self) -> None:
        async with self._tx() as db:
            await db.execute(migrations.CREATE_SCHEMA_MIGRATIONS)
            rows = await db.execute_fetchall("SELECT MAX(version) FROM schema_migrations")
            current = next(iter(rows))[0] or 0
            migrations.check_not_newer(current, migrations.SQLITE, self._path)
            for step in migrations.SQLITE:
                if step.version <= current:
                    continue
                for statement in step.statements:
                    await db.execute(statement)
                await db.execute(
                    "INSERT INTO schema_migrations VALUES (?, ?, ?)",
                    (step.version, step.name, datetime.now(UTC).isoformat()),
                )

    async def _version(self) -> int | None:
        found = await self._rows(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
        )
        return await self.schema_version() if found else None

    async def schema_version(self) -> int:
        rows = await self._rows("SELECT MAX(version) FROM schema_migrations")
        return int(rows[0][0] or 0)

    async def add_device(self, device_id: str) -> bool:
        inserted, _ = await self._write(
            "INSERT INTO devices (device_id, state, updated_at) VALUES (?, ?, ?)"
            " ON CONFLICT (device_id) DO NOTHING",
            (device_id, State.DISCOVERED.value, time.time()),
        )
        return inserted == 1

    async def get_device(self, device_id: str) -> Device | None:
        sql = f"SELECT {_DEVICE_COLUMNS} FROM devices WHERE device_id = ?"  # noqa: S608
        rows = await self._rows(sql, (device_id,))
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
        # Shadow names are AWS-limited to [a-zA-Z0-9:_-], so a quoted JSON path is safe.
        extra = "$." + json.dumps(name) if kind is VersionKind.SHADOW else etag
        params = {"device_id": device_id, "version": version, "now": time.time(), "extra": extra}
        async with self._tx() as db:
            if (await db.execute(_RECORD_VERSION[kind], params)).rowcount == 1:
                return True
            if not await db.execute_fetchall(
                "SELECT 1 FROM devices WHERE device_id = ?", (device_id,)
            ):
                raise StoreError(f"unknown device {device_id}")
            return False

    async def transition(
        self,
        device_id: str,
        event: Event,
        *,
        reason: str | None = None,
        enqueue: Sequence[OutboxEntry] = (),
    ) -> State:
        async with self._tx() as db:
            rows = list(
                await db.execute_fetchall(
                    "SELECT state, revision FROM devices WHERE device_id = ?", (device_id,)
                )
            )
            if not rows:
                raise StoreError(f"unknown device {device_id}")
            current, revision = rows[0]
            state, kept_reason = next_state(device_id, current, event, reason)
            now = time.time()
            await db.execute(
                "UPDATE devices SET state = ?, reason = ?, revision = ?, updated_at = ?"
                " WHERE device_id = ? AND revision = ?",
                (state.value, kept_reason, revision + 1, now, device_id, revision),
            )
            await db.executemany(
                _INSERT_OUTBOX,
                [(device_id, e.kind, dump_json(e.payload), now, now) for e in enqueue],
            )
            return state

    async def counts_by_state(self) -> dict[State, int]:
        counts = dict.fromkeys(State, 0)
        for state, count in await self._rows("SELECT state, COUNT(*) FROM devices GROUP BY 1"):
            counts[State(state)] = count
        return counts

    async def devices_in_state(self, state: State, limit: int) -> list[Device]:
        sql = f"SELECT {_DEVICE_COLUMNS} FROM devices WHERE state = ? ORDER BY updated_at LIMIT ?"  # noqa: S608
        return [_device(row) for row in await self._rows(sql, (state.value, limit))]

    async def problems(self, limit: int) -> list[Device]:
        sql = (
            f"SELECT {_DEVICE_COLUMNS} FROM devices WHERE state IN (?, ?)"  # noqa: S608
            " ORDER BY updated_at DESC LIMIT ?"
        )
        params = (*sorted(s.value for s in PROBLEM_STATES), limit)
        return [_device(row) for row in await self._rows(sql, params)]

    async def enqueue(self, device_id: str, kind: str, payload: Mapping[str, Any]) -> int:
        now = time.time()
        return (await self._write(_INSERT_OUTBOX, (device_id, kind, dump_json(payload), now, now)))[
            1
        ]

    async def claim(self, owner: str, limit: int, lease_seconds: float) -> list[OutboxItem]:
        now = time.time()
        async with self._tx() as db:
            rows = list(await db.execute_fetchall(_CLAIMABLE, {"now": now, "limit": limit}))
            await db.executemany(
                "UPDATE outbox SET claimed_by = ?, claimed_until = ?, attempts = attempts + 1"
                " WHERE id = ?",
                [(owner, now + lease_seconds, row[0]) for row in rows],
            )
        return [
            OutboxItem(row[0], row[1], row[2], json.loads(row[3]), row[4] + 1, row[5])
            for row in rows
        ]

    async def renew_claims(self, owner: str, lease_seconds: float) -> int:
        changed, _ = await self._write(
            "UPDATE outbox SET claimed_until = ? WHERE claimed_by = ?",
            (time.time() + lease_seconds, owner),
        )
        return changed

    async def release_claims(self, owner: str) -> int:
        changed, _ = await self._write(
            "UPDATE outbox SET claimed_by = NULL, claimed_until = NULL WHERE claimed_by = ?",
            (owner,),
        )
        return changed

    async def ack(self, ids: Iterable[int]) -> None:
        async with self._tx() as db:
            await db.executemany("DELETE FROM outbox WHERE id = ?", [(i,) for i in ids])

    async def retry(self, item_id: int, delay: float, error: str) -> None:
        await self._write(
            "UPDATE outbox SET claimed_by = NULL, claimed_until = NULL, available_at = ?,"
            " last_error = ? WHERE id = ?",
            (time.time() + delay, error, item_id),
        )

    async def outbox_size(self) -> int:
        return int((await self._rows("SELECT COUNT(*) FROM outbox"))[0][0])

    async def queued(self, device_ids: Collection[str]) -> set[str]:
        sql = "SELECT DISTINCT device_id FROM outbox WHERE kind = ? AND device_id IN ({marks})"
        return {row[0] for row in await self._rows_in(sql, device_ids, SYNC)}

    async def dead_letter(self, source: str, reason: str, payload: Mapping[str, Any]) -> int:
        _, new_id = await self._write(
            "INSERT INTO dead_letters (source, reason, payload, created_at) VALUES (?, ?, ?, ?)",
            (source, reason, dump_json(payload), time.time()),
        )
        return new_id

    async def dead_letters(self, limit: int) -> list[DeadLetter]:
        rows = await self._rows(
            "SELECT id, source, reason, payload, created_at FROM dead_letters"
            " ORDER BY id DESC LIMIT ?",
            (limit,),
        )
        return [
            DeadLetter(r[0], r[1], r[2], json.loads(r[3]), datetime.fromtimestamp(r[4], UTC))
            for r in rows
        ]

    async def get_checkpoint(self, name: str) -> str | None:
        rows = await self._rows("SELECT value FROM checkpoints WHERE name = ?", (name,))
        return str(rows[0][0]) if rows else None

    async def set_checkpoint(self, name: str, value: str) -> None:
        await self._write(
            "INSERT INTO checkpoints VALUES (?1, ?2, ?3) ON CONFLICT (name)"
            " DO UPDATE SET value = ?2, updated_at = ?3",
            (name, value, time.time()),
        )

    async def get_devices(self, device_ids: Collection[str]) -> dict[str, Device]:
        sql = f"SELECT {_DEVICE_COLUMNS} FROM devices WHERE device_id IN ({{marks}})"  # noqa: S608
        return {row[0]: _device(row) for row in await self._rows_in(sql, device_ids)}

    async def get_views(self, device_ids: Collection[str]) -> dict[str, DeviceView]:
        sql = "SELECT view FROM devices WHERE view IS NOT NULL AND device_id IN ({marks})"
        views = (
            DeviceView.from_json(json.loads(text))
            for (text,) in await self._rows_in(sql, device_ids)
        )
        return {view.device_id: view for view in views}

    async def views_after(self, after: str, limit: int) -> list[DeviceView]:
        rows = await self._rows(
            "SELECT view FROM devices WHERE device_id > ? AND view IS NOT NULL"
            " ORDER BY device_id LIMIT ?",
            (after, limit),
        )
        return [DeviceView.from_json(json.loads(text)) for (text,) in rows]

    async def fingerprints_after(self, after: str, limit: int) -> list[tuple[str, str]]:
        rows = await self._rows(
            "SELECT device_id, fingerprint FROM devices WHERE device_id > ?"
            " AND fingerprint IS NOT NULL ORDER BY device_id LIMIT ?",
            (after, limit),
        )
        return [(row[0], row[1]) for row in rows]

    async def save_changes(self, changes: ChangeSet) -> None:
        now = time.time()
        async with self._tx() as db:
            await db.executemany(
                _UPSERT_VIEW,
                [
                    (v.device_id, State.DISCOVERED.value, now, dump_json(v.to_json()))
                    for v in changes.views
                ],
            )
            await db.executemany(
                "DELETE FROM memberships WHERE device_id = ?",
                [(v.device_id,) for v in changes.views],
            )
            await db.executemany(
                "INSERT INTO memberships (group_name, device_id) VALUES (?, ?)",
                [(g, v.device_id) for v in changes.views if v.exists for g in v.groups],
            )
            await db.executemany(
                "UPDATE devices SET fingerprint = NULL WHERE device_id = ?",
                [(d,) for d in changes.force],
            )
            await db.executemany(_CHANGED, [(now, d) for d in changes.sync])
            await db.executemany(_ENQUEUE_SYNC, [(d, now) for d in changes.sync])
            await db.executemany(
                "INSERT INTO thing_groups (name, parent) VALUES (?, ?)"
                " ON CONFLICT (name) DO UPDATE SET parent = excluded.parent",
                list(changes.groups.items()),
            )
            await db.executemany(
                "DELETE FROM thing_groups WHERE name = ?", [(g,) for g in changes.deleted_groups]
            )
            await db.executemany(
                "INSERT INTO dead_letters (source, reason, payload, created_at)"
                " VALUES (?, ?, ?, ?)",
                [(src, why, dump_json(body), now) for src, why, body in changes.dead_letters],
            )

    async def group_parents(self) -> dict[str, str | None]:
        return dict(await self._rows("SELECT name, parent FROM thing_groups"))

    async def members(self, groups: Collection[str]) -> list[str]:
        sql = "SELECT device_id FROM memberships WHERE group_name IN ({marks})"
        return sorted({row[0] for row in await self._rows_in(sql, groups)})

    async def mark_provisioned(self, fingerprints: Mapping[str, str]) -> int:
        now = time.time()
        async with self._tx() as db:
            cursor = await db.executemany(
                "UPDATE devices SET state = ?, fingerprint = ?, revision = revision + 1,"
                " updated_at = ? WHERE device_id = ? AND state = ?",
                [
                    (State.MIRRORED.value, fp, now, device_id, State.DISCOVERED.value)
                    for device_id, fp in fingerprints.items()
                ],
            )
            return max(cursor.rowcount, 0)

    async def finish(
        self,
        item: OutboxItem,
        events: Sequence[Event],
        *,
        fingerprint: str | None,
        reason: str | None = None,
    ) -> State:
        async with self._tx() as db:
            rows = list(
                await db.execute_fetchall(
                    "SELECT state FROM devices WHERE device_id = ?", (item.device_id,)
                )
            )
            if not rows:
                raise StoreError(f"unknown device {item.device_id}")
            state = State(rows[0][0])
            now = time.time()
            if events:
                state, kept = apply_events(item.device_id, state, events, reason)
                await db.execute(
                    "UPDATE devices SET state = ?, reason = ?, revision = revision + 1,"
                    " updated_at = ? WHERE device_id = ?",
                    (state.value, kept, now, item.device_id),
                )
            await db.execute(
                "UPDATE devices SET fingerprint = ? WHERE device_id = ?",
                (fingerprint, item.device_id),
            )
            await db.execute("DELETE FROM outbox WHERE id = ?", (item.id,))
            return state

    async def add_wave(self, wave: Wave, devices: Collection[str]) -> bool:
        now = time.time()
        async with self._tx() as db:
            cursor = await db.execute(
                "INSERT INTO waves (name, state, spec, job_id, reason, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO NOTHING",
                (wave.name, wave.state, dump_json(wave.spec), wave.job_id, wave.reason, now, now),
            )
            if cursor.rowcount != 1:
                return False
            await db.executemany(
                "INSERT INTO wave_devices (wave, device_id, updated_at) VALUES (?, ?, ?)",
                [(wave.name, device_id, now) for device_id in devices],
            )
        return True

    async def get_wave(self, name: str) -> Wave | None:
        sql = f"SELECT {_WAVE_COLUMNS} FROM waves WHERE name = ?"  # noqa: S608 - our constant
        rows = await self._rows(sql, (name,))
        return _wave(rows[0]) if rows else None

    async def waves(self) -> list[Wave]:
        sql = f"SELECT {_WAVE_COLUMNS} FROM waves ORDER BY created_at, name"  # noqa: S608
        return [_wave(row) for row in await self._rows(sql)]

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
            "UPDATE waves SET state = ?, job_id = coalesce(?, job_id),"
            " reason = coalesce(?, reason), updated_at = ? WHERE name = ?"
        )
        params: list[Any] = [state, job_id, reason, time.time(), name]
        if expected:
            sql += f" AND state IN ({', '.join('?' * len(expected))})"
            params.extend(expected)
        changed, _ = await self._write(sql, params)
        return changed == 1

    async def wave_devices(self, name: str) -> list[WaveDevice]:
        rows = await self._rows(
            "SELECT wave, device_id, outcome, reason, updated_at FROM wave_devices WHERE wave = ?"
            " ORDER BY device_id",
            (name,),
        )
        return [WaveDevice(row[0], row[1], row[2], row[3], _when(row[4])) for row in rows]

    async def record_outcome(
        self, name: str, device_id: str, outcome: str, reason: str | None
    ) -> None:
        await self._write(
            "UPDATE wave_devices SET outcome = ?, reason = ?, updated_at = ?"
            " WHERE wave = ? AND device_id = ?",
            (outcome, reason, time.time(), name, device_id),
        )

    async def sync_mark(self, device_id: str, direction: str, name: str = "") -> SyncMark | None:
        rows = await self._rows(
            "SELECT version, digest FROM sync_marks"
            " WHERE device_id = ? AND direction = ? AND name = ?",
            (device_id, direction, name),
        )
        return SyncMark(device_id, direction, name, rows[0][0], rows[0][1]) if rows else None

    async def set_sync_mark(self, mark: SyncMark) -> bool:
        changed, _ = await self._write(
            "INSERT INTO sync_marks VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
            " ON CONFLICT (device_id, direction, name) DO UPDATE"
            " SET version = ?4, digest = ?5, updated_at = ?6 WHERE sync_marks.version < ?4",
            (mark.device_id, mark.direction, mark.name, mark.version, mark.digest, time.time()),
        )
        return changed == 1

    async def replace_fingerprint(
        self, device_id: str, expected: str | None, fingerprint: str
    ) -> bool:
        changed, _ = await self._write(
            "UPDATE devices SET fingerprint = ? WHERE device_id = ? AND fingerprint IS ?",
            (fingerprint, device_id, expected),
        )
        return changed == 1

    async def acquire_lease(self, partition: str, owner: str, seconds: float) -> bool:
        now = time.time()
        taken, _ = await self._write(_TAKE_LEASE, (partition, owner, now + seconds, now))
        return taken == 1

    async def renew_lease(self, partition: str, owner: str, seconds: float) -> bool:
        now = time.time()
        renewed, _ = await self._write(
            "UPDATE partition_leases SET lease_until = ?"
            " WHERE partition = ? AND owner = ? AND lease_until > ?",
            (now + seconds, partition, owner, now),
        )
        return renewed == 1

    async def release_lease(self, partition: str, owner: str) -> None:
        await self._write(
            "DELETE FROM partition_leases WHERE partition = ? AND owner = ?", (partition, owner)
        )
