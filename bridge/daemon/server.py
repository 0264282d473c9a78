"""The daemon's lifecycle: start the services, run them, shut them down in order.

Modelled on uvicorn's `Server`: signal handlers only set `should_exit` (a second signal
sets `force_exit`), the previous handlers are restored afterwards so the daemon can run
inside a test, and every way out maps to one documented exit code.

    startup   enter each service in order; then the health server
    main      run every service until a signal, or until one fails or all are done
    shutdown  ask every service to stop consuming, wait up to `shutdown_timeout` for
              them to drain, cancel the stragglers with a message, then leave each
              service in reverse order (store flushed, target and source closed)
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from collections.abc import Iterator, Sequence
from types import FrameType
from typing import Any

from bridge.core.service import Check, Service
from bridge.daemon.http import HealthServer
from bridge.daemon.status_page import StatusBoard
from bridge.errors import BridgeError, ConfigError
from bridge.exit_codes import ExitCode
from bridge.logging import get_logger
from bridge.metrics import Metrics

__all__ = ["Daemon"]

_log = get_logger("daemon")
_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Daemon:
    """Runs a set of services as one process until told to stop."""

    def __init__(
        self,
        services: Sequence[Service],
        *,
        metrics: Metrics,
        host: str = "127.0.0.1",
        port: int = 0,
        shutdown_timeout: float = 30.0,
        status: StatusBoard | None = None,
    ) -> None:
        if not services:
            raise ValueError("a daemon needs at least one service")
        if shutdown_timeout <= 0:
            raise ValueError("shutdown_timeout must be positive")
        self.services = tuple(services)
        self.shutdown_timeout = shutdown_timeout
        self.status = status
        self.health = HealthServer(metrics.registry, self.readiness, status=status, metrics=metrics)
        self._host = host
        self._port = port
        self.should_exit = asyncio.Event()
        self.force_exit = asyncio.Event()
        self.started = asyncio.Event()
        self.failure: BaseException | None = None  # why start-up failed, for the command line

    async def serve(self) -> ExitCode:
        """Run until a signal (or `should_exit`), a failed service, or all work done."""
        with self._capture_signals():
            return await self._serve()

    async def readiness(self) -> dict[str, Check]:
        """Every service's checks, named `<service>.<check>`."""
        checks: dict[str, Check] = {}
        for service in self.services:
            try:
                found = await service.ready()
            except Exception as exc:  # a check that cannot answer is not ready
                found = {"ready": Check(ok=False, detail=f"the check failed: {exc}")}
            checks.update({f"{service.name}.{name}": check for name, check in found.items()})
        return checks

    async def _serve(self) -> ExitCode:
        async with contextlib.AsyncExitStack() as stack:
            try:
                for service in self.services:
                    _log.info("daemon.service_starting", service=service.name)
                    await stack.enter_async_context(service)
                if self.status is not None:  # after the services: it reads the store they made
                    await stack.enter_async_context(self.status)
                await self.health.start(self._host, self._port)
                stack.push_async_callback(self.health.close)
            except ConfigError as exc:
                self.failure = exc
                _log.error("daemon.config_error", error=str(exc))
                return ExitCode.CONFIG_ERROR
            except BridgeError as exc:  # says what is wrong; a traceback would add nothing
                self.failure = exc
                _log.error("daemon.startup_failed", error=str(exc))
                return ExitCode.STARTUP_FAILED
            except Exception as exc:
                self.failure = exc
                _log.exception("daemon.startup_failed", error=str(exc))
                return ExitCode.STARTUP_FAILED
            _log.info("daemon.started", port=self.health.port, services=self._names())
            self.started.set()
            return await self._run_services()
        raise AssertionError("unreachable")  # pragma: no cover - the stack re-raises or returns

    async def _run_services(self) -> ExitCode:
        tasks = {
            asyncio.create_task(service.run(), name=f"service[{service.name}]"): service
            for service in self.services
        }
        exiting = asyncio.create_task(self.should_exit.wait(), name="daemon.should_exit")
        code = ExitCode.OK
        try:
            pending: set[asyncio.Task[Any]] = set(tasks)
            while pending and not self.should_exit.is_set():
                done, pending = await asyncio.wait(
                    {*pending, exiting}, return_when=asyncio.FIRST_COMPLETED
                )
                pending.discard(exiting)
                failures = {tasks[t].name: _failure(t) for t in done if t in tasks}
                for name, failure in failures.items():
                    if failure is not None:
                        _log.error("daemon.service_failed", service=name, exc_info=failure)
                        code = ExitCode.FAILED
                if code is ExitCode.FAILED:
                    break
            return await self._shutdown(tasks, code)
        finally:
            exiting.cancel()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _shutdown(self, tasks: dict[asyncio.Task[None], Service], code: ExitCode) -> ExitCode:
        running = [task for task in tasks if not task.done()]
        if not running:
            _log.info("daemon.stopped", reason="work done" if code is ExitCode.OK else "failure")
            return code
        _log.info("daemon.shutting_down", timeout=self.shutdown_timeout)
        for service in reversed(self.services):
            service.stop()
        late = await self._drain(running)
        if self.force_exit.is_set():
            _log.warning("daemon.forced_exit", abandoned=[tasks[t].name for t in late])
            code = ExitCode.INTERRUPTED
        elif late:
            _log.warning(
                "daemon.shutdown_timeout",
                cancelled=[tasks[t].name for t in late],
                timeout=self.shutdown_timeout,
            )
        for task in late:
            task.cancel(msg="the daemon's shutdown timeout ran out")
        await asyncio.gather(*late, return_exceptions=True)
        for task, service in tasks.items():
            failure = None if task in late else _failure(task)
            if failure is not None and code is ExitCode.OK:
                _log.error("daemon.service_failed", service=service.name, exc_info=failure)
                code = ExitCode.FAILED
        _log.info("daemon.stopped", exit_code=int(code))
        return code

    async def _drain(self, running: list[asyncio.Task[None]]) -> set[asyncio.Task[None]]:
        """Wait for every running service to return, until the timeout or a forced exit."""
        finished = asyncio.create_task(asyncio.wait(running), name="daemon.drain")
        forced = asyncio.create_task(self.force_exit.wait(), name="daemon.force_exit")
        try:
            await asyncio.wait(
                {finished, forced},
                timeout=self.shutdown_timeout,
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            finished.cancel()
            forced.cancel()
        return {task for task in running if not task.done()}

    def _names(self) -> list[str]:
        return [service.name for service in self.services]

    @contextlib.contextmanager
    def _capture_signals(self) -> Iterator[None]:
        # Signals can only be listened to from the main thread.
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        loop = asyncio.get_running_loop()

        def handle(signum: int, _frame: FrameType | None) -> None:
            loop.call_soon_threadsafe(self._on_signal, signum)

        def dump(_signum: int, _frame: FrameType | None) -> None:
            loop.call_soon_threadsafe(_dump_tasks)

        previous = {signum: signal.signal(signum, handle) for signum in _SIGNALS}
        previous[signal.SIGUSR1] = signal.signal(signal.SIGUSR1, dump)
        try:
            yield
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def _on_signal(self, signum: int) -> None:
        name = signal.Signals(signum).name
        if self.should_exit.is_set():
            _log.warning("daemon.signal_forces_exit", signal=name)
            self.force_exit.set()
        else:
            _log.info("daemon.signal_received", signal=name)
        self.should_exit.set()


def _dump_tasks() -> None:
    """SIGUSR1: log where every task waits, for an operator asking "what is it doing?"."""
    for task in asyncio.all_tasks():
        _log.warning("daemon.task_dump", task=task.get_name(), where=_await_chain(task.get_coro()))


def _await_chain(awaitable: object) -> list[str]:
    """The chain of coroutines a task is suspended in, outermost first, and what it awaits."""
    chain: list[str] = []
    while awaitable is not None and len(chain) < 32:
        frame = getattr(awaitable, "cr_frame", None) or getattr(awaitable, "ag_frame", None)
        if frame is None:
            chain.append(repr(awaitable)[:200])  # a future, or something else awaited
            break
        chain.append(f"{frame.f_code.co_filename}:{frame.f_lineno} {frame.f_code.co_name}")
        awaitable = getattr(awaitable, "cr_await", None) or getattr(awaitable, "ag_await", None)
    return chain


def _failure(task: asyncio.Task[Any]) -> BaseException | None:
    if not task.done() or task.cancelled():
        return None
    return task.exception()
