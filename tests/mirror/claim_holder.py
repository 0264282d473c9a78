"""A mirror replica in a process of its own: it claims every queued sync and never finishes
one (its target never answers), renewing its claims until it is killed.

`python -m tests.mirror.claim_holder DSN` prints "holding" once every device's write is in
flight. Used by tests/mirror/test_claims.py, which kills it with SIGKILL.
"""

import asyncio
import sys

from bridge.core.store import open_store
from bridge.mirror.engine import Engine, EngineOptions
from tests.core.fakes import GatedTarget
from tests.mirror.test_claims import DEVICES, LEASE, views

OWNER = "replica-in-a-process"


async def main(dsn: str) -> None:
    async with open_store(dsn) as store:
        target = GatedTarget()
        engine = Engine(
            store,
            target,
            options=EngineOptions(
                owner=OWNER,
                reconcile_every=None,
                lease_seconds=LEASE,
                import_threshold=None,
                drain_seconds=0,
            ),
        )
        running = asyncio.create_task(engine.run())
        await engine.seed(views(), {})
        while target.waiting != set(DEVICES):
            await asyncio.sleep(0.05)
        print("holding", flush=True)  # noqa: T201 - the test reads it
        await running


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
