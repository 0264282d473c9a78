"""What the daemon runs: services, each started in order and stopped in reverse.

A port like `ports.Source`: the steps (`bridge.mirror`, and relay and cutover to come)
implement it and the daemon (`bridge.daemon`) runs it, so no step imports the daemon.

A service is an async context manager: entering it opens what it needs (connections,
the store), leaving it closes them. Between the two the daemon runs `run()` in a task and,
at shutdown, calls `stop()` first, so every service stops consuming before any of them
closes. `ready()` answers `/readyz` for the service. The mirror is the first service;
relay, reverse sync and cutover join beside it without touching it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Protocol, Self

__all__ = ["Check", "Service"]


@dataclass(frozen=True, slots=True)
class Check:
    """One readiness check: whether it holds, why not, and progress toward it."""

    ok: bool
    detail: str = ""
    progress: Mapping[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        """The check as `/readyz` shows it."""
        shown: dict[str, Any] = {"ok": self.ok}
        if self.detail:
            shown["detail"] = self.detail
        if self.progress:
            shown["progress"] = dict(self.progress)
        return shown


class Service(Protocol):
    """A long-running part of the daemon."""

    name: str

    async def __aenter__(self) -> Self:
        """Open what the service needs; a failure here is a failed start-up."""
        ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close what `__aenter__` opened; runs after `run` returned or was cancelled."""
        ...

    async def run(self) -> None:
        """Work until `stop` is called (then drain and return) or the work is done."""
        ...

    def stop(self) -> None:
        """Stop taking new work; `run` drains what is in flight and returns."""
        ...

    async def ready(self) -> Mapping[str, Check]:
        """Named readiness checks; the daemon is ready when every service's all hold."""
        ...
