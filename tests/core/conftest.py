import asyncio
import contextlib
import uuid

import asyncpg
import pytest

from bridge.core.store import open_store
from tests.core.postgres_server import describe_failure, postgres_server


@pytest.fixture(scope="session")
def postgres_database():
    with contextlib.ExitStack() as stack:
        failure = None
        try:
            dsn = stack.enter_context(postgres_server())
        except Exception as exc:
            failure = describe_failure(exc)
        if failure is not None:
            # A skipped backend would pass CI unnoticed: no server is a failure.
            pytest.fail(failure, pytrace=False)
        yield dsn


async def _execute(dsn, sql):
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_dsn(request, tmp_path):
    """A DSN of an empty store; on PostgreSQL a fresh schema, so tests stay independent."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    database = request.getfixturevalue("postgres_database")
    schema = f"test_{uuid.uuid4().hex[:12]}"
    asyncio.run(_execute(database, f"CREATE SCHEMA {schema}"))
    separator = "&" if "?" in database else "?"
    yield f"{database}{separator}search_path={schema}"
    asyncio.run(_execute(database, f"DROP SCHEMA {schema} CASCADE"))


@pytest.fixture
async def store(store_dsn):
    async with open_store(store_dsn) as opened:
        yield opened
