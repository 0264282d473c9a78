"""The fleet's side of a child process running a shard (`bridge_sim.fleet_child`).

Each child is started in its own session, so a Ctrl-C on the terminal reaches only the
parent, which then stops its children in order; an `atexit` hook kills any child still
running when the interpreter ends without that (an exception that skipped the fleet's
exit, a loop torn down), and a child whose parent vanished sees end of file on its stdin
and stops itself; one still connecting its agents (not reading stdin yet) when the parent
is killed, even with SIGKILL, gets SIGTERM from Linux instead (`bridge_sim.pdeathsig`).
A child that exits without being told to is reported at once (logged, with the end of its
log) and makes `Fleet.check()` raise: its devices stopped counting readings, which must
never pass for a quiet fleet.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bridge.logging import get_logger
from bridge_sim.fleet_shard import Reading
from bridge_sim.pdeathsig import spawn

__all__ = ["ShardProcess"]

_log = get_logger("sim.fleet")
_RUNNING: set[int] = set()  # process ids of children not yet reaped, for the atexit hook

OnEvent = Callable[[str, str, Any], None]


def _kill_leftovers() -> None:
    for pid in list(_RUNNING):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)


atexit.register(_kill_leftovers)


class ShardProcess:
    """One child process and the devices it runs."""

    def __init__(
        self, index: int, config: dict[str, Any], log_path: Path, on_event: OnEvent
    ) -> None:
        self.index = index
        self.names: list[str] = config["names"]
        self._config = config
        self._log_path = log_path
        self._on_event = on_event
        self._process: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._signals: dict[str, asyncio.Event] = {
            e: asyncio.Event() for e in ("started", "telemetry-stopped", "stopped")
        }
        self._ended = asyncio.Event()
        self._stopping = False
        self.error: str | None = None  # why the child failed or died, once it did

    def __repr__(self) -> str:
        return f"fleet process {self.index} ({self.names[0]}..{self.names[-1]})"

    async def start(self) -> None:
        """Start the child and wait until every agent of its shard is connected."""
        with self._log_path.open("ab") as log:
            self._process = await spawn(
                sys.executable, "-m", "bridge_sim.fleet_child",
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=log,
                start_new_session=True,
                limit=1 << 20,
            )  # fmt: skip
        _RUNNING.add(self._process.pid)
        self._reader = asyncio.create_task(self._read(), name=f"fleet-process-{self.index}")
        await self._send(self._config)
        await self._until("started")

    def post(self, command: str) -> None:
        """Send a command without waiting (a line fits the pipe's buffer)."""
        assert self._process is not None
        assert self._process.stdin is not None
        if self._process.returncode is None and not self._ended.is_set():
            self._process.stdin.write(json.dumps({"cmd": command}).encode() + b"\n")

    async def command(self, command: str, answer: str) -> None:
        """Send a command and wait for its answer (or for the child's end)."""
        if self._ended.is_set():
            raise ChildProcessError(self.error or f"{self!r} has ended")
        await self._send({"cmd": command})
        await self._until(answer)

    async def stop(self, timeout: float = 60.0) -> None:
        """Ask the child to stop its agents; terminate it, then kill it, if it does not."""
        process = self._process
        if process is None or process.returncode is not None:
            return
        self._stopping = True
        with contextlib.suppress(ConnectionError, RuntimeError):
            await self._send({"cmd": "stop"})
        try:
            await asyncio.wait_for(self._ended.wait(), timeout)
        except TimeoutError:
            _log.warning("sim.fleet_process_stuck", process=self.index, waited=timeout)
            for sig in (signal.SIGTERM, signal.SIGKILL):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, sig)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._ended.wait(), 5)
                    break

    async def _send(self, message: dict[str, Any]) -> None:
        assert self._process is not None
        assert self._process.stdin is not None
        self._process.stdin.write(json.dumps(message).encode() + b"\n")
        await self._process.stdin.drain()

    async def _until(self, event: str) -> None:
        waits = [asyncio.ensure_future(self._signals[event].wait())]
        waits.append(asyncio.ensure_future(self._ended.wait()))
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()
        if not self._signals[event].is_set():
            raise ChildProcessError(self.error or f"{self!r} ended before '{event}'")

    async def _read(self) -> None:
        assert self._process is not None
        assert self._process.stdout is not None
        try:
            async for line in self._process.stdout:
                self._dispatch(json.loads(line))
        finally:
            code = await self._process.wait()
            _RUNNING.discard(self._process.pid)
            if not self._stopping or code != 0:
                self.error = self.error or f"{self!r} exited with code {code}"
                self.error += f"; the end of its log ({self._log_path}):\n{self._log_tail()}"
                _log.error("sim.fleet_process_died", process=self.index, error=self.error)
            self._ended.set()

    def _dispatch(self, message: dict[str, Any]) -> None:
        kind = message["e"]
        if kind == "r":
            reading = Reading(message["s"], message["t"], message["c"])
            self._on_event("reading", message["d"], reading)
        elif kind == "state":
            self._on_event("state", message["d"], message["v"])
        elif kind == "error":
            self.error = f"{self!r} failed: {message['message']}"
        elif kind in self._signals:
            self._signals[kind].set()

    def _log_tail(self, lines: int = 20) -> str:
        try:
            text = self._log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])
