import asyncio

import boto3
import pytest

from bridge_sim.stack import sim_stack


@pytest.fixture
async def stack(tmp_path):
    async with sim_stack(tmp_path / "sim") as running:
        yield running


def iot_client(env):
    return boto3.client(
        "iot",
        region_name=env["AWS_REGION"],
        endpoint_url=env["AWS_ENDPOINT_URL"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
    )


# In-process daemons the test runs (see `watch`): `until` fails at once when one stopped,
# with how it stopped, instead of waiting out its timeout for work that will never happen.
_watched: list[asyncio.Task] = []


def watch(task):
    """Make `until` fail as soon as `task` (a daemon) ends; returns a function to unwatch."""
    _watched.append(task)
    return lambda: _watched.remove(task)


def _stopped_daemon():
    for task in _watched:
        if task.done():
            how = "cancelled" if task.cancelled() else task.exception() or task.result()
            return f"the daemon stopped: {how!r}"
    return None


async def until(check, *, timeout=120.0, what="the condition"):
    """Poll `check` (sync or async) until it returns something truthy; return it."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        if stopped := _stopped_daemon():
            pytest.fail(f"{stopped} while waiting for {what}")
        found = check()
        if asyncio.iscoroutine(found):
            found = await found
        if found:
            return found
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.2)
