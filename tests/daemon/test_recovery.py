"""After a kill -9 with syncs claimed, the restarted daemon resumes them within seconds."""

import asyncio
import json
import sqlite3
import time
from urllib.parse import parse_qs, urlsplit

import aiohttp
import asyncpg
import pytest

from bridge.exit_codes import ExitCode
from tests.daemon.children import Daemon, write_bridge_env
from tests.daemon.parity import aws_clients
from tests.daemon.test_lifecycle import _port
from tests.daemon.test_run import _on_hub, until_parity

pytestmark = pytest.mark.timeout(300)
PREFIX = "rec-"
RESUME_WITHIN = 5.0  # seconds from the restarted daemon answering to every device on the hub


async def _claimed(dsn):
    """Outbox messages whose claim has not expired, read straight from the store."""
    query = "SELECT COUNT(*) FROM outbox WHERE claimed_by IS NOT NULL"
    if dsn.startswith("sqlite:///"):
        with sqlite3.connect(dsn.removeprefix("sqlite:///")) as db:
            try:
                return db.execute(query).fetchone()[0]
            except sqlite3.OperationalError:  # not migrated yet
                return 0
    parts = urlsplit(dsn)
    schema = parse_qs(parts.query)["search_path"][0]
    conn = await asyncpg.connect(
        parts._replace(query="").geturl(), server_settings={"search_path": schema}
    )
    try:
        return await conn.fetchval(query)
    except asyncpg.UndefinedTableError:  # not migrated yet
        return 0
    finally:
        await conn.close()


async def _control(stack, method, path, body=None):
    base = f"https://{stack.iothub.service.host}:{stack.iothub.service.port}"
    async with (
        aiohttp.ClientSession(base) as client,
        client.request(method, path, json=body, ssl=False) as answer,
    ):
        assert answer.status < 300, await answer.text()


async def _live(port):
    async with aiohttp.ClientSession() as client:
        try:
            async with client.get(f"http://127.0.0.1:{port}/livez") as answer:
                return answer.status == 200
        except aiohttp.ClientError:
            return False


async def test_a_restart_after_kill_9_resumes_claimed_syncs_within_seconds(
    stack, tmp_path, store_dsn
):
    env = stack.env()
    iot, data = aws_clients(env)
    names = {f"{PREFIX}{i:02d}" for i in range(30)}
    for name in names:
        iot.create_thing(thingName=name)
        data.update_thing_shadow(thingName=name, payload=json.dumps({"state": {"desired": {}}}))
    # Every hub write hangs, so the workers hold their claims when the kill comes.
    await _control(stack, "PUT", "/_emulator/latency", {"seconds": 60, "endpoint": "rest"})
    env_file = write_bridge_env(tmp_path, env, store_dsn)
    port = _port(env_file)
    with (tmp_path / "daemon.log").open("ab") as log:
        daemon = Daemon(env_file, log)
        daemon.start()
        try:
            async with asyncio.timeout(120):
                while not await _claimed(store_dsn):
                    assert daemon.process.poll() is None, (tmp_path / "daemon.log").read_text()
                    await asyncio.sleep(0.1)
            daemon.kill()
            assert await _claimed(store_dsn) > 0  # the dead process's claims are still there
            await _control(stack, "DELETE", "/_emulator/faults")  # latency off
            daemon.start()
            async with asyncio.timeout(60):
                while not await _live(port):
                    await asyncio.sleep(0.05)
            answering = time.monotonic()
            async with asyncio.timeout(60):
                while _on_hub(stack, PREFIX) != names:
                    await asyncio.sleep(0.05)
            resumed = time.monotonic() - answering
            print(f"resumed in {resumed:.2f} s after the restart answered ({store_dsn[:10]})")  # noqa: T201
            assert resumed < RESUME_WITHIN, (tmp_path / "daemon.log").read_text()[-3000:]
            await until_parity(env, PREFIX, timeout=60)
        finally:
            code = await asyncio.to_thread(daemon.stop)
    assert code == ExitCode.OK
