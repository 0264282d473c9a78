"""Anti-entropy under live churn: what a pass costs, how many devices it reads again, and
whether the store ends equal to AWS.

A pass reads the whole estate while events keep changing it, so many of its reads are
older than events folded meanwhile; those the versions cannot order are read again (see
`bridge/core/view.py`, `merge`). This measures it on the real engine and a real SQLite
store, with AWS and IoT Hub in memory (the target is the tests' `MemoryTarget`), so the
figures are the bridge's own: the baseline is the same pass with no churn.

Usage: python bench/reconcile.py [--devices N] [--rates R ...]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository's tests/

from bridge.core.events import ShadowChanged, ThingChanged
from bridge.core.ports import Delivery
from bridge.core.store import open_store
from bridge.core.view import DeviceView, ShadowView
from bridge.mirror.engine import Engine, EngineOptions
from tests.core.fakes import MemoryTarget

_PAGE = 100  # devices a listing page holds, read at once
_EVENT_DELAY = 0.05  # seconds from an AWS change to its event reaching the bridge
# Seconds from listing a page to handing its devices over: each needs its groups and
# shadows read (three or four calls, eight devices at a time).
_PAGE_SECONDS = 0.5


class Aws:
    """The estate, changed by the churn; events reach the bridge `_EVENT_DELAY` later."""

    def __init__(self, devices: int) -> None:
        self.things = {
            f"d{i:06d}": DeviceView(
                f"d{i:06d}", thing_version=1, shadows={"": ShadowView(1, {"v": 0})}
            )
            for i in range(devices)
        }
        self.names = list(self.things)
        self.events: asyncio.Queue[Delivery] = asyncio.Queue()
        self.changes = 0
        self._shadow_versions: dict[tuple[str, str], int] = {}

    def change(self, rnd: random.Random) -> None:
        name = rnd.choice(self.names)
        view = self.things[name]
        choice = rnd.randrange(4)
        if choice == 0:
            version = (view.thing_version or 0) + 1
            self.things[name] = replace(view, thing_version=version, attributes={"v": str(version)})
            event = ThingChanged(name, version, attributes={"v": str(version)})
        else:
            shadow = (
                "" if choice == 1 else "cfg"
            )  # "cfg": a named shadow, created by its first update
            key = (name, shadow)
            current = view.shadows.get(shadow)
            version = self._shadow_versions.get(key, current.version if current else 0) + 1
            self._shadow_versions[key] = version
            doc = ShadowView(version, {"v": version})
            self.things[name] = replace(view, shadows={**view.shadows, shadow: doc})
            event = ShadowChanged(name, shadow or None, version, desired={"v": version})
        self.changes += 1
        loop = asyncio.get_running_loop()
        loop.call_later(_EVENT_DELAY, self.events.put_nowait, _delivery(event))


def _delivery(event: ThingChanged | ShadowChanged) -> Delivery:
    return Delivery("t", b"{}", event, None, lambda: None, time.monotonic())


class Source:
    def __init__(self, aws: Aws) -> None:
        self._aws = aws

    async def deliveries(self) -> AsyncIterator[Delivery]:
        while True:
            yield await self._aws.events.get()


class Reader:
    """Lists a page at once and hands it over while the churn goes on, as a pass does."""

    def __init__(self, aws: Aws) -> None:
        self._aws = aws
        self.reads = 0

    async def read_device(self, device_id: str) -> DeviceView | None:
        self.reads += 1
        await asyncio.sleep(0.001)
        return self._aws.things.get(device_id)

    async def read_groups(self) -> dict[str, str | None]:
        return {}

    async def snapshot(self) -> AsyncIterator[DeviceView]:
        names = sorted(self._aws.things)
        for start in range(0, len(names), _PAGE):
            page = [self._aws.things[n] for n in names[start : start + _PAGE]]
            await asyncio.sleep(_PAGE_SECONDS)  # its shadows are read meanwhile
            for view in page:
                yield view


async def _churn(aws: Aws, rate: float, stop: asyncio.Event) -> None:
    rnd = random.Random(7)
    started, made = time.monotonic(), 0
    while not stop.is_set():
        due = int((time.monotonic() - started) * rate)
        for _ in range(due - made):
            aws.change(rnd)
        made = max(made, due)
        await asyncio.sleep(0.01)


async def _pass(devices: int, rate: float, workdir: Path) -> str:
    aws = Aws(devices)
    reader, target = Reader(aws), MemoryTarget()
    dsn = f"sqlite:///{workdir / f'store-{rate:g}.db'}"
    async with open_store(dsn) as store:
        engine = Engine(
            store,
            target,
            source=Source(aws),
            reader=reader,
            options=EngineOptions(reconcile_every=None, import_threshold=None),
        )
        running = asyncio.create_task(engine.run())
        try:
            await engine.seed(reader.snapshot(), {})
            await engine.settle(600)
            stop = asyncio.Event()
            churn = asyncio.create_task(_churn(aws, rate, stop)) if rate else None
            reads_before, started = reader.reads, time.perf_counter()
            report = await engine.reconcile()
            seconds = time.perf_counter() - started
            stop.set()
            if churn is not None:
                await churn
            await asyncio.sleep(_EVENT_DELAY * 4)  # the last events reach the bridge
            await engine.settle(600)
            views = await store.get_views(list(aws.things))
            unequal = sum(
                1
                for name, view in aws.things.items()
                if (views[name].attributes, dict(views[name].shadows))
                != (view.attributes, dict(view.shadows))
            )
        finally:
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)
    label = "baseline (no churn)" if not rate else f"churn {rate:g} changes/s"
    return (
        f"{label}: pass over {devices} devices in {seconds:.2f} s; {aws.changes} changes "
        f"meanwhile; {report.reread} devices read again ({reader.reads - reads_before} single "
        f"reads); store unequal to AWS afterwards: {unequal}"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=5000)
    parser.add_argument("--rates", type=float, nargs="*", default=[0, 100, 300])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for rate in args.rates:
            print(await _pass(args.devices, rate, Path(tmp)), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
