"""A PostgreSQL server for the store tests: given, local, or a private throwaway cluster."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg

from bridge_sim.ports import free_port

ENV_DSN = "BRIDGE_TEST_POSTGRES_DSN"
LOCAL_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"


async def _execute(dsn: str, sql: str) -> None:
    conn = await asyncpg.connect(dsn, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def _with_database(dsn: str, database: str) -> str:
    base, _, _ = dsn.rpartition("/")
    return f"{base}/{database}"


@contextlib.contextmanager
def _scratch_database(admin_dsn: str) -> Iterator[str]:
    name = f"iot_bridge_test_{uuid.uuid4().hex[:12]}"
    asyncio.run(_execute(admin_dsn, f'CREATE DATABASE "{name}"'))
    try:
        yield _with_database(admin_dsn, name)
    finally:
        asyncio.run(_execute(admin_dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@contextlib.contextmanager
def _private_cluster() -> Iterator[str]:
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3])
    )
    if not candidates:
        msg = "no /usr/lib/postgresql/*/bin/initdb (run scripts/install-system-deps)"
        raise RuntimeError(msg)
    bindir = Path(candidates[-1]).parent
    workdir = Path(tempfile.mkdtemp(prefix="iot-bridge-pg-"))
    datadir = workdir / "data"
    # initdb refuses to run as root: run the server as the postgres system user instead.
    run_as: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(workdir, user="postgres", group="postgres")
        run_as = ["runuser", "-u", "postgres", "--"]
    port = free_port()
    pg_ctl = [*run_as, str(bindir / "pg_ctl"), "-D", str(datadir)]
    options = f"-p {port} -k {workdir} -c listen_addresses=127.0.0.1 -c fsync=on"
    try:
        subprocess.run(  # noqa: S603 - fixed command lines on binaries we located
            [*run_as, str(bindir / "initdb"), "-D", str(datadir), "-U", "postgres",
             "--auth=trust", "--no-sync"],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        subprocess.run(  # noqa: S603
            [*pg_ctl, "-o", options, "-l", str(workdir / "log"), "-w", "start"],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        stop = [*pg_ctl, "-m", "immediate", "stop"]
        subprocess.run(stop, capture_output=True, check=False)  # noqa: S603
        shutil.rmtree(workdir, ignore_errors=True)


def postgres_server() -> contextlib.AbstractContextManager[str]:
    """Return a context yielding an empty database's DSN: from env, local server, or private."""
    given = os.environ.get(ENV_DSN)
    if given:
        return contextlib.nullcontext(given)
    try:
        asyncio.run(_execute(LOCAL_DSN, "SELECT 1"))
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return _private_cluster()
    return _scratch_database(LOCAL_DSN)


def describe_failure(exc: BaseException) -> str:
    """Explain why no server could be had, with what to do about it."""
    detail = getattr(exc, "stderr", b"") or b""
    if isinstance(detail, bytes):
        detail = detail.decode(errors="replace")
    return (
        f"no PostgreSQL for the store tests: {exc!r} {detail}\n"
        f"Set {ENV_DSN}, run a server on 127.0.0.1:5432 with trust auth, or install the "
        "server binaries (scripts/install-system-deps) for a private cluster."
    )
