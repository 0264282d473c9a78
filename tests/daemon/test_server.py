"""The daemon's lifecycle with services of our own: order, signals, timeouts, exit codes."""

import asyncio
import os
import signal
import time

import aiohttp
import pytest
from structlog.testing import capture_logs

from bridge.core.service import Check
from bridge.daemon.server import Daemon
from bridge.errors import ConfigError
from bridge.exit_codes import ExitCode
from bridge.metrics import Metrics


class Recorder:
    def __init__(self):
        self.calls = []


class FakeService:
    """A service that records what the daemon does to it."""

    def __init__(self, name, log, *, ignores_stop=False, fails_start=None, fails_run=None):
        self.name = name
        self.log = log
        self.ignores_stop = ignores_stop
        self.fails_start = fails_start
        self.fails_run = fails_run
        self.stopping = asyncio.Event()
        self.running = asyncio.Event()
        self.ok = False

    async def __aenter__(self):
        if self.fails_start:
            raise self.fails_start
        self.log.calls.append(("enter", self.name))
        return self

    async def __aexit__(self, *exc):
        self.log.calls.append(("exit", self.name))

    async def run(self):
        self.running.set()
        if self.fails_run:
            raise self.fails_run
        if self.ignores_stop:
            await asyncio.Event().wait()
        await self.stopping.wait()
        self.log.calls.append(("drained", self.name))

    def stop(self):
        self.log.calls.append(("stop", self.name))
        self.stopping.set()

    async def ready(self):
        return {"work": Check(self.ok, "" if self.ok else "warming up", {"done": 1, "total": 2})}


def daemon(*services, timeout=30.0):
    return Daemon(services, metrics=Metrics.create(), shutdown_timeout=timeout)


async def started(server):
    async with asyncio.timeout(30):
        await server.started.wait()
        for service in server.services:
            await service.running.wait()


async def test_sigterm_stops_every_service_in_reverse_order_and_restores_handlers():
    log = Recorder()
    before = signal.getsignal(signal.SIGTERM)
    server = daemon(FakeService("first", log), FakeService("second", log))
    serving = asyncio.create_task(server.serve())
    await started(server)
    os.kill(os.getpid(), signal.SIGTERM)
    assert await asyncio.wait_for(serving, 30) is ExitCode.OK
    assert log.calls[:2] == [("enter", "first"), ("enter", "second")]
    assert log.calls[2:4] == [("stop", "second"), ("stop", "first")]
    assert set(log.calls[4:6]) == {("drained", "first"), ("drained", "second")}
    assert log.calls[6:] == [("exit", "second"), ("exit", "first")]
    assert signal.getsignal(signal.SIGTERM) is before


async def test_a_second_sigint_forces_the_exit_long_before_the_shutdown_timeout():
    log = Recorder()
    stubborn = FakeService("stubborn", log, ignores_stop=True)
    server = daemon(stubborn, timeout=120.0)
    serving = asyncio.create_task(server.serve())
    await started(server)
    os.kill(os.getpid(), signal.SIGINT)
    async with asyncio.timeout(30):
        await stubborn.stopping.wait()  # the first signal asked for a drain
    begun = time.monotonic()
    os.kill(os.getpid(), signal.SIGINT)
    assert await asyncio.wait_for(serving, 30) is ExitCode.INTERRUPTED
    assert time.monotonic() - begun < 10
    assert log.calls[-1] == ("exit", "stubborn")  # still closed, even when forced


async def test_the_shutdown_timeout_cancels_a_service_that_does_not_drain():
    log = Recorder()
    stubborn = FakeService("stubborn", log, ignores_stop=True)
    polite = FakeService("polite", log)
    server = daemon(polite, stubborn, timeout=0.5)
    serving = asyncio.create_task(server.serve())
    await started(server)
    server.should_exit.set()
    assert await asyncio.wait_for(serving, 30) is ExitCode.OK
    assert ("drained", "polite") in log.calls
    assert ("drained", "stubborn") not in log.calls
    assert log.calls[-2:] == [("exit", "stubborn"), ("exit", "polite")]


async def test_a_failed_service_stops_the_others_with_exit_code_1():
    log = Recorder()
    healthy = FakeService("healthy", log)
    broken = FakeService("broken", log, fails_run=RuntimeError("the store went away"))
    code = await asyncio.wait_for(daemon(healthy, broken).serve(), 30)
    assert code is ExitCode.FAILED
    assert ("stop", "healthy") in log.calls
    assert ("drained", "healthy") in log.calls
    assert log.calls[-2:] == [("exit", "broken"), ("exit", "healthy")]


@pytest.mark.parametrize(
    ("failure", "expected"),
    [
        (ConfigError("IOTHUB_CONNECTION_STRING is not set"), ExitCode.CONFIG_ERROR),
        (OSError("connection refused"), ExitCode.STARTUP_FAILED),
    ],
)
async def test_a_failed_start_closes_what_started_and_says_why(failure, expected):
    log = Recorder()
    server = daemon(FakeService("first", log), FakeService("second", log, fails_start=failure))
    assert await asyncio.wait_for(server.serve(), 30) is expected
    assert server.failure is failure
    assert log.calls == [("enter", "first"), ("exit", "first")]


async def test_services_that_finish_their_work_end_the_daemon_cleanly():
    class Once(FakeService):
        async def run(self):
            self.running.set()
            self.log.calls.append(("done", self.name))

    log = Recorder()
    assert await asyncio.wait_for(daemon(Once("catch-up", log)).serve(), 30) is ExitCode.OK
    assert log.calls == [("enter", "catch-up"), ("done", "catch-up"), ("exit", "catch-up")]


async def test_readyz_aggregates_every_service_check_with_detail_and_progress():
    log = Recorder()
    first, second = FakeService("first", log), FakeService("second", log)
    server = daemon(first, second)
    serving = asyncio.create_task(server.serve())
    await started(server)
    try:
        url = f"http://127.0.0.1:{server.health.port}/readyz"
        async with aiohttp.ClientSession() as client:
            first.ok = True
            async with client.get(url) as answer:
                assert answer.status == 503
                assert await answer.json() == {
                    "ready": False,
                    "checks": {
                        "first.work": {"ok": True, "progress": {"done": 1, "total": 2}},
                        "second.work": {
                            "ok": False,
                            "detail": "warming up",
                            "progress": {"done": 1, "total": 2},
                        },
                    },
                }
            second.ok = True
            async with client.get(url) as answer:
                assert answer.status == 200
                assert (await answer.json())["ready"] is True
    finally:
        server.should_exit.set()
        await asyncio.wait_for(serving, 30)


def scraped(text, name):
    """{labels text: value} of one metric in a text exposition."""
    found = {}
    for line in text.splitlines():
        if line.startswith((name + " ", name + "{")):
            key, value = line.rsplit(" ", 1)
            found[key[len(name) :]] = float(value)
    return found


async def test_metrics_scrape_exports_readiness_as_of_the_scrape():
    log = Recorder()
    first, second = FakeService("first", log), FakeService("second", log)
    metrics = Metrics.create()
    server = Daemon([first, second], metrics=metrics)
    serving = asyncio.create_task(server.serve())
    await started(server)
    try:
        url = f"http://127.0.0.1:{server.health.port}/metrics"
        async with aiohttp.ClientSession() as client:
            first.ok = True
            # No /readyz asked: the scrape itself looks at the checks.
            async with client.get(url) as answer:
                text = await answer.text()
            assert scraped(text, "bridge_ready") == {"": 0.0}
            assert scraped(text, "bridge_ready_check") == {
                '{check="first.work"}': 1.0,
                '{check="second.work"}': 0.0,
            }
            second.ok = True
            async with client.get(url) as answer:
                text = await answer.text()
            assert scraped(text, "bridge_ready") == {"": 1.0}
            assert set(scraped(text, "bridge_ready_check").values()) == {1.0}
            first.ok = False
            async with client.get(url.replace("/metrics", "/readyz")) as answer:
                assert answer.status == 503
            # What /readyz found is kept until the next look.
            assert metrics.registry.get_sample_value("bridge_ready") == 0
            assert (
                metrics.registry.get_sample_value("bridge_ready_check", {"check": "first.work"})
                == 0
            )
    finally:
        server.should_exit.set()
        await asyncio.wait_for(serving, 30)


class HangingCheck(FakeService):
    async def ready(self):
        if self.ok:
            return await super().ready()
        await asyncio.Event().wait()  # a store that does not answer
        raise AssertionError("unreachable")


async def test_a_hanging_check_makes_the_scrape_say_not_ready_instead_of_timing_out():
    log = Recorder()
    service = HangingCheck("stuck", log)
    metrics = Metrics.create()
    server = Daemon([service], metrics=metrics)
    serving = asyncio.create_task(server.serve())
    await started(server)
    try:
        url = f"http://127.0.0.1:{server.health.port}/metrics"
        async with aiohttp.ClientSession() as client:
            service.ok = True
            async with client.get(url) as answer:
                assert scraped(await answer.text(), "bridge_ready") == {"": 1.0}
            service.ok = False
            server.health.ready_timeout = 0.2
            async with asyncio.timeout(10), client.get(url) as answer:
                assert answer.status == 200
                assert scraped(await answer.text(), "bridge_ready") == {"": 0.0}
    finally:
        server.should_exit.set()
        await asyncio.wait_for(serving, 30)


def test_impossible_combinations_are_refused_at_once():
    with pytest.raises(ValueError, match="at least one service"):
        Daemon([], metrics=Metrics.create())
    with pytest.raises(ValueError, match="shutdown_timeout"):
        Daemon([FakeService("x", Recorder())], metrics=Metrics.create(), shutdown_timeout=0)


async def test_sigusr1_logs_where_every_task_waits():
    log = Recorder()
    server = daemon(FakeService("waiting", log))
    serving = asyncio.create_task(server.serve())
    await started(server)
    with capture_logs() as logs:
        os.kill(os.getpid(), signal.SIGUSR1)
        async with asyncio.timeout(30):
            while not any(entry["event"] == "daemon.task_dump" for entry in logs):
                await asyncio.sleep(0.01)
    server.should_exit.set()
    await asyncio.wait_for(serving, 30)
    dumped = {
        entry["task"]: entry["where"] for entry in logs if entry["event"] == "daemon.task_dump"
    }
    where = dumped["service[waiting]"]
    assert any("test_server.py" in line and " run" in line for line in where)
    assert "Future" in where[-1]  # what the service waits on: its stop event
