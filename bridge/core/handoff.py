"""Calls from other threads run on one event loop, in order, many per wake-up.

The SDKs the bridge relays through call back on threads of their own (awscrt's event
loop, proton's reactor). `loop.call_soon_threadsafe` wakes the event loop through its
self-pipe on every call; at thousands of messages a second those wake-ups (a write, a
read, a pass of the selector each) cost more than the work they carry. A `LoopHandoff`
queues the calls and wakes the loop once for all that arrived since it last ran.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Any

__all__ = ["LoopHandoff"]


class LoopHandoff:
    """Runs callbacks posted from any thread on `loop`, in the order they were posted."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._calls: deque[tuple[Callable[..., object], tuple[Any, ...]]] = deque()
        # True while a wake-up is on its way: whatever is queued before the loop runs it
        # is run by it. Cleared by the loop *before* it takes calls, so a call posted after
        # the loop looked is never left without a wake-up (deque operations are atomic).
        self._woken = False

    def post(self, callback: Callable[..., object], *args: Any) -> None:
        """Run `callback(*args)` on the loop soon; dropped if the loop is closed."""
        self._calls.append((callback, args))
        if self._woken:
            return
        self._woken = True
        try:
            self.loop.call_soon_threadsafe(self._run)
        except RuntimeError:  # the loop is closed: nobody is left to tell
            self._calls.clear()

    def _run(self) -> None:
        self._woken = False
        calls = self._calls
        while calls:
            callback, args = calls.popleft()
            try:
                callback(*args)
            except Exception as exc:  # one failing callback must not strand the rest
                self.loop.call_exception_handler(
                    {"message": f"exception in {callback!r} handed to the loop", "exception": exc}
                )
