"""The devices of one process: their agents, readings and shadow traffic.

A `Shard` is what the fleet runs in a process, its own or a child (`bridge_sim.fleet_child`).
It tells its owner what happens through one callback, so the in-process fleet and a child
reporting over a pipe count readings the same way: a reading is recorded once its send
returned, with the cloud that acknowledged it ("unsent" when none did), which is what the
rehearsal's verification compares with what each cloud received.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import random
import sys
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from bridge_sim.fleet_shadow import ShadowApp, reading_state

__all__ = ["AGENT_PATH", "Reading", "Shard", "load_agent"]

AGENT_PATH = (
    Path(__file__).resolve().parents[2] / "firmware_patches" / "agents" / "python" / "agent.py"
)

# What a shard reports: ("reading", device, Reading), ("state", device, {cloud, outcome,
# shadow counts}).
Report = Callable[[str, str, Any], None]


@dataclass(frozen=True)
class Reading:
    """One telemetry reading as the device saw it: when, and which cloud took it."""

    seq: int
    at: float  # wall clock, seconds since the epoch (the `ts` in the payload)
    cloud: str  # "aws", "azure" or "unsent" (refused or between clouds)


def load_agent() -> ModuleType:
    """The reference agent module, loaded from its file (it is a program, not a package)."""
    if (loaded := sys.modules.get("migration_agent")) is not None:
        return loaded
    spec = importlib.util.spec_from_file_location("migration_agent", AGENT_PATH)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load the migration agent from {AGENT_PATH}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being built
    spec.loader.exec_module(module)
    return module


def _waker(loop: asyncio.AbstractEventLoop, event: asyncio.Event) -> Callable[[], None]:
    """Sets `event` from any thread."""

    def wake() -> None:
        with contextlib.suppress(RuntimeError):  # the loop closed: nobody waits any more
            loop.call_soon_threadsafe(event.set)

    return wake


class Shard:
    """Some of the fleet's devices, run on the current event loop.

    Args:
        env: The stand-ins' settings.
        workdir: The fleet's folder (each device's certificate, key and agent state).
        names: The devices of this shard (registered already).
        faults: Device name -> fault names.
        interval: Seconds between readings of one device; 0 sends none.
        shadow_interval: Seconds between a device's reported-state updates; 0 for none
            (desired changes are answered either way).
        report: Where events go (see `Report`).
    """

    def __init__(
        self,
        env: Mapping[str, str],
        workdir: Path,
        names: list[str],
        faults: Mapping[str, list[str]],
        *,
        interval: float,
        shadow_interval: float,
        report: Report,
    ) -> None:
        self._env = dict(env)
        self._workdir = workdir
        self._names = names
        self._faults = faults
        self._interval = interval
        self._shadow_interval = shadow_interval
        self._report = report
        self.agents: dict[str, Any] = {}
        self._apps: dict[str, ShadowApp] = {}
        self._wakeups: dict[str, asyncio.Event] = {}  # a desired change waits for an answer
        self._tasks: list[asyncio.Task[None]] = []
        # Every device's send blocks until its cloud acknowledges: a thread for its readings
        # and one for its shadow, so a slow cloud delays that device, never the rest.
        self._threads = ThreadPoolExecutor(max_workers=2 * len(names), thread_name_prefix="fleet")

    async def start(self) -> None:
        """Start every device's agent (connects to AWS), one after the other."""
        agents = load_agent()
        loop = asyncio.get_running_loop()
        for name in self._names:
            self.agents[name] = await asyncio.to_thread(self._start_agent, agents, name)
            wakeup = self._wakeups[name] = asyncio.Event()
            self._apps[name] = ShadowApp(self.agents[name], _waker(loop, wakeup))

    def _start_agent(self, agents: ModuleType, name: str) -> Any:
        folder = self._workdir / name
        settings = agents.AgentSettings(
            thing_name=name,
            cert_file=str(folder / "cert.pem"),
            key_file=str(folder / "key.pem"),
            endpoint=self._env["AWS_IOT_DATA_ENDPOINT"],
            ca_file=self._env.get("AWS_IOT_ROOT_CA"),
            faults=list(self._faults.get(name, [])),
        )
        agent = agents.MigrationAgent(settings, folder / "state.json")
        agent.start()
        return agent

    def start_telemetry(self) -> None:
        """Every device starts its readings and shadow traffic; idempotent."""
        if self._tasks:
            return
        for name in self._names:
            if self._interval > 0:
                self._tasks.append(asyncio.create_task(self._telemetry(name), name=f"t[{name}]"))
            if self._shadow_interval > 0:
                self._tasks.append(asyncio.create_task(self._shadow(name), name=f"s[{name}]"))

    async def stop_telemetry(self) -> None:
        """Stop every device's readings and shadow traffic (agents stay connected), then
        report each device's state."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        self.report_states()

    def report_states(self) -> None:
        """Report where each device is and what its agent and shadow app did."""
        for name, agent in self.agents.items():
            self._report(
                "state",
                name,
                {
                    "cloud": agent.cloud,
                    "outcome": agent.outcome,
                    "shadow": dict(self._apps[name].counts),
                },
            )

    async def stop(self) -> None:
        """Stop the traffic, then every agent (in parallel: each waits for its clouds)."""
        await self.stop_telemetry()
        loop = asyncio.get_running_loop()
        stops = [loop.run_in_executor(self._threads, a.stop) for a in self.agents.values()]
        await asyncio.gather(*stops, return_exceptions=True)
        self._threads.shutdown(wait=False, cancel_futures=True)

    async def _telemetry(self, name: str) -> None:
        loop = asyncio.get_running_loop()
        agent = self.agents[name]
        sequence = 0
        while True:
            sequence += 1
            at = time.time()
            reading = {
                "seq": sequence,
                "ts": round(at, 3),
                "temperature": round(random.uniform(18, 26), 2),  # noqa: S311
            }
            try:
                cloud = await loop.run_in_executor(self._threads, agent.send_telemetry, reading)
            except Exception:  # between clouds, or a vanished device: count it
                cloud = "unsent"
            self._report("reading", name, Reading(sequence, at, cloud))
            await asyncio.sleep(self._interval)

    async def _shadow(self, name: str) -> None:
        """Report state every `shadow_interval` (jittered); answer desired changes as they
        come (the SDK callbacks set the device's wakeup event), retrying each second while
        the device is between clouds."""
        loop = asyncio.get_running_loop()
        app, wakeup = self._apps[name], self._wakeups[name]
        sequence = 0
        next_report = time.monotonic() + random.uniform(0, self._shadow_interval)  # noqa: S311
        while True:
            wait = next_report - time.monotonic()
            if app.has_pending():
                wait = min(wait, 1.0)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wakeup.wait(), max(0.0, wait))
            wakeup.clear()
            try:
                if app.has_pending():
                    await loop.run_in_executor(self._threads, app.answer)
                if time.monotonic() >= next_report:
                    next_report = time.monotonic() + self._shadow_interval
                    sequence += 1
                    await loop.run_in_executor(self._threads, app.report, reading_state(sequence))
            except Exception:  # between clouds, or vanished: the next turn tries again
                app.counts["failed"] += 1
