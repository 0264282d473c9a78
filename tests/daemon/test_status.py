"""`iot-bridge status`: counts per state, problems and dead letters, from the store."""

import asyncio
import json
import subprocess
import sys

from bridge.core.machine import Event
from bridge.core.store import ChangeSet, open_store
from bridge.core.view import DeviceView


async def _fill(dsn):
    async with open_store(dsn) as store:
        await store.save_changes(
            ChangeSet(
                views=[DeviceView("ok-1"), DeviceView("ok-2"), DeviceView("big-1")],
                sync={"ok-1", "ok-2", "big-1"},
                dead_letters=[("aws", "payload is not JSON", {"topic": "t"})],
            )
        )
        for item in await store.claim("w", 10, 30):
            if item.device_id == "big-1":
                await store.finish(item, [Event.FAIL], fingerprint=None, reason="twin too large")
            else:
                await store.finish(item, [Event.PROVISION, Event.PROVISIONED], fingerprint="f")


def test_status_reports_states_problems_and_dead_letters(tmp_path):
    dsn = f"sqlite:///{tmp_path / 'bridge.db'}"
    asyncio.run(_fill(dsn))
    env_file = tmp_path / "bridge.env"
    env_file.write_text(f"BRIDGE_STORE__DSN={dsn}\n")
    command = [sys.executable, "-c", "from bridge.cli import main; main()", "status"]
    answer = subprocess.run(  # noqa: S603 - our own interpreter and CLI
        [*command, "--env-file", str(env_file), "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    status = json.loads(answer.stdout)
    assert status["total"] == 3
    assert status["devices"]["mirrored"] == 2
    assert status["devices"]["failed"] == 1
    assert [(p["device_id"], p["reason"]) for p in status["problems"]] == [
        ("big-1", "twin too large")
    ]
    assert [d["reason"] for d in status["dead_letters"]] == ["payload is not JSON"]
    text = subprocess.run(  # noqa: S603
        [*command, "--env-file", str(env_file)], capture_output=True, text=True, check=True
    ).stdout
    assert "3 devices, 0 changes waiting" in text
    assert "big-1  failed: twin too large" in text
