"""The instruments of bench/mirror.py: the daemon as a child process, a probe inside the
IoT Hub emulator, shadow-change and thing-creation loads, and estate helpers."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import math
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import boto3
import botocore.config
import paho.mqtt.client as mqtt
from prometheus_client.parser import text_string_to_metric_families

from bridge.azure.quotas import Operation, Tier
from bridge_sim.aws import certs
from bridge_sim.stack import SimStack

RELAY = "aws-bridge"  # the relay module the daemon creates with every device
SERVICE_VERSIONS = 1_000_000  # shadow versions of the documents the bench publishes itself
POLL = 0.5  # seconds between RSS samples and completion polls
STOP_TIMEOUT = 30.0  # seconds a daemon gets to drain after SIGTERM
TICK = 0.01  # seconds between the event-loop lag probe's wake-ups
Metrics = dict[tuple[str, frozenset[tuple[str, str]]], float]
_seqs = itertools.count(1)  # benchmark sequence numbers, unique across the run


def percentile(samples: list[float], fraction: float) -> float:
    if not samples:
        return math.nan
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "never"
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


def histogram_quantile(fraction: float, buckets: list[tuple[float, float]]) -> float | None:
    """Prometheus' estimate from cumulative (upper bound, count) pairs, +Inf last."""
    total = buckets[-1][1] if buckets else 0
    if total <= 0:
        return None
    rank = fraction * total
    lower, below = 0.0, 0.0
    for upper, count in buckets:
        if count >= rank:
            if math.isinf(upper):
                return lower
            if count == below:
                return upper
            return lower + (upper - lower) * (rank - below) / (count - below)
        lower, below = upper, count
    return lower


class HubProbe:
    """Stamps the emulator's quota charges and the twin PUTs that carry `bench_seq`."""

    def __init__(self, stack: SimStack) -> None:
        assert stack.iothub.service is not None
        self.service = stack.iothub.service
        self.registry = stack.iothub.registry
        self.quotas = stack.iothub.quotas
        self.granted: dict[Operation, list[tuple[float, float]]] = defaultdict(list)
        self.refused: dict[Operation, list[float]] = defaultdict(list)
        self.written: dict[int, float] = {}  # bench_seq -> when its twin PUT was applied
        self.reported_at: list[float] = []  # when each relay module's reported patch landed
        self._install()

    def _install(self) -> None:
        try_acquire, replace_twin = self.quotas.try_acquire, self.registry.replace_twin
        patch_reported = self.registry.patch_reported

        def charged(operation: Operation, cost: float = 1.0) -> bool:
            allowed = try_acquire(operation, cost)
            if allowed:
                self.granted[operation].append((time.monotonic(), cost))
            else:
                self.refused[operation].append(time.monotonic())
            return allowed

        def replaced(device_id: str, body: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
            twin = replace_twin(device_id, body, *args, **kwargs)
            seq = ((body.get("properties") or {}).get("desired") or {}).get("bench_seq")
            if isinstance(seq, int):
                self.written.setdefault(seq, time.monotonic())
            return twin

        def reported(device_id: str, patch: dict[str, Any], module_id: str | None = None) -> int:
            version = patch_reported(device_id, patch, module_id)
            if module_id == RELAY:
                self.reported_at.append(time.monotonic())
            return version

        self.quotas.try_acquire = charged  # type: ignore[method-assign]
        self.registry.replace_twin = replaced  # type: ignore[method-assign]
        self.registry.patch_reported = reported  # type: ignore[method-assign]

    def reset(self, tier: Tier | None) -> None:
        """An empty hub with `tier`'s quotas (None: unthrottled), and no counts."""
        self.registry.reset()
        self.service.stats.clear()
        self.quotas.reconfigure(tier, 1)
        self.granted.clear()
        self.refused.clear()
        self.reported_at.clear()

    def mirrored(self) -> int:
        """Devices registered with their relay module (bulk and import both add it last)."""
        return sum(1 for device in self.registry.devices() if RELAY in device.modules)

    def requests(self, **filters: Any) -> int:
        return int(self.service.stats.count(**filters))

    def charges(self, operation: Operation, begin: float, end: float) -> float:
        return sum(c for t, c in self.granted[operation] if begin <= t <= end)

    def jobs(self, since: float) -> tuple[int, float]:
        """Import jobs started after `since` (epoch seconds) and their summed run time."""
        jobs = [
            job
            for job in self.service.context.jobs.jobs()
            if job.start_time.timestamp() >= since and job.end_time is not None
        ]
        return len(jobs), sum((j.end_time - j.start_time).total_seconds() for j in jobs)

    def steady_rate(self, operation: Operation, begin: float, end: float) -> float:
        """Granted operations per second from the first grant in [begin, end] to the last."""
        inside = [(t, c) for t, c in self.granted[operation] if begin <= t <= end]
        if len(inside) < 2 or inside[-1][0] <= inside[0][0]:
            return 0.0
        return sum(c for _, c in inside[1:]) / (inside[-1][0] - inside[0][0])


def read_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of a process, in kB."""
    found: dict[str, int] = {}
    with contextlib.suppress(OSError), Path(f"/proc/{pid}/status").open() as status:
        for line in status:
            key, _, value = line.partition(":")
            if key in {"VmRSS", "VmHWM"}:
                found[key] = int(value.split()[0])
    return found


class CpuMeter:
    """CPU used by the daemon and by this process (the stand-ins, the load) from creation to
    `report()`, and how late this process's event loop (the emulator's) wakes meanwhile."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.started = time.monotonic()
        self.daemon = self._daemon()
        self.here = time.process_time()
        self.lags: list[float] = []
        self._ticker = asyncio.create_task(self._tick())

    def _daemon(self) -> float:
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{self.pid}/stat").read_text().rpartition(")")[2].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return 0.0

    async def _tick(self) -> None:
        while True:
            due = time.monotonic() + TICK
            await asyncio.sleep(TICK)
            self.lags.append(time.monotonic() - due)

    def report(self) -> str:
        self._ticker.cancel()
        elapsed = max(time.monotonic() - self.started, 1e-9)
        daemon = (self._daemon() - self.daemon) / elapsed
        here = (time.process_time() - self.here) / elapsed
        lag = percentile(self.lags, 0.99) * 1000
        return (
            f"cpu: daemon={daemon:.2f} stand-ins+load={here:.2f} cores, load avg "
            f"{os.getloadavg()[0]:.1f}; the emulator's event loop woke up to {lag:.0f} ms "
            "late (p99)"
        )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Daemon:
    """`iot-bridge run` as a child process with its own store, client id and env file."""

    def __init__(
        self,
        workdir: Path,
        env: dict[str, str],
        label: str,
        *,
        tier: Tier | None = None,
        import_threshold: int = 1000,
        reported: bool = False,
        extra: dict[str, str] | None = None,
    ) -> None:
        self.label = label
        self.port = free_port()
        slug = "".join(c if c.isalnum() else "-" for c in label)
        settings = {
            **env,
            "BRIDGE_STORE__DSN": f"sqlite:///{workdir / f'bridge-{slug}.db'}",
            "BRIDGE_HTTP__PORT": str(self.port),
            "BRIDGE_MIRROR__CLIENT_ID": f"iot-bridge-bench-{secrets.token_hex(4)}",
            "BRIDGE_MIRROR__AWS_RATE_SCALE": "0",  # the stand-in has no AWS API limits
            "BRIDGE_MIRROR__RECONCILE_INTERVAL": "0",
            "BRIDGE_MIRROR__SESSION_EXPIRY": "60",  # earlier runs' sessions stop queueing soon
            "BRIDGE_IOTHUB__IMPORT_THRESHOLD": str(import_threshold),
            "BRIDGE_IOTHUB__MIRROR_REPORTED": "true" if reported else "false",
            "BRIDGE_LOG_LEVEL": "WARNING",
            **({"BRIDGE_IOTHUB__TIER": tier} if tier else {}),
            **(extra or {}),
        }
        self.env_file = workdir / f"bridge-{slug}.env"
        self.env_file.write_text("".join(f"{k}={v}\n" for k, v in settings.items()))
        self.log_path = workdir / f"bridge-{slug}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.started = 0.0
        self.samples: list[tuple[float, int]] = []  # (monotonic, VmRSS kB)
        self.peak_kb = 0
        self._sampler: asyncio.Task[None] | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and CLI
                [sys.executable, "-m", "bridge", "run", "--env-file", str(self.env_file)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={
                    k: v
                    for k, v in os.environ.items()
                    if not k.startswith(("AWS_", "IOTHUB_", "BRIDGE_", "AZURE_"))
                },
            )
        self.started = time.monotonic()
        self._sampler = asyncio.create_task(self._sample())

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    async def _sample(self) -> None:
        while self.alive:
            status = read_status(self.pid)
            if "VmRSS" in status:
                self.samples.append((time.monotonic(), status["VmRSS"]))
            # The kernel's high-water mark since exec. Not wait4's ru_maxrss: that counts
            # the pages the child shared with this (large) process between fork and exec.
            self.peak_kb = max(self.peak_kb, status.get("VmHWM", 0))
            await asyncio.sleep(POLL)

    def check_alive(self) -> None:
        if not self.alive:
            tail = self.log_path.read_text(errors="replace")[-3000:]
            raise SystemExit(f"daemon {self.label} exited:\n{tail}")

    async def metrics(self) -> Metrics:
        """The daemon's /metrics as {(sample name, labels): value}."""
        async with (
            aiohttp.ClientSession() as client,
            client.get(f"http://127.0.0.1:{self.port}/metrics") as answer,
        ):
            text = await answer.text()
        return {
            (sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }

    async def states(self) -> dict[str, int]:
        """Devices per state, as the daemon exports its store's counts."""
        return {
            dict(labels)["state"]: int(value)
            for (name, labels), value in (await self.metrics()).items()
            if name == "bridge_devices" and value
        }

    async def until_ready(self, timeout: float) -> float:
        """Seconds from start until /readyz says ready (every device of the initial sync on
        IoT Hub, since the lifecycle rework; before it, the initial read folded in)."""
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as client:
            while time.monotonic() < deadline:
                self.check_alive()
                with contextlib.suppress(aiohttp.ClientError):
                    async with client.get(f"http://127.0.0.1:{self.port}/readyz") as answer:
                        if answer.status == 200:
                            return time.monotonic() - self.started
                await asyncio.sleep(0.2)
        raise SystemExit(f"daemon {self.label} not ready after {timeout:.0f} s")

    async def until_settled(self, devices: int, timeout: float) -> float:
        """Until its gauges say `devices` mirrored and nothing queued or in flight."""
        begin = time.monotonic()
        deadline = begin + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            with contextlib.suppress(aiohttp.ClientError):
                found = await self.metrics()
                mirrored = found.get(("bridge_devices", frozenset({("state", "mirrored")})), 0)
                outbox = found.get(("bridge_queue_depth", frozenset({("queue", "outbox")})), 1)
                busy = found.get(("bridge_queue_depth", frozenset({("queue", "in_flight")})), 1)
                if mirrored >= devices and outbox == 0 and busy == 0:
                    return time.monotonic() - begin
            await asyncio.sleep(1.0)
        raise SystemExit(f"daemon {self.label} did not settle in {timeout:.0f} s")

    def rss_mb(self) -> float:
        return read_status(self.pid).get("VmRSS", 0) / 1024

    def hwm_mb(self) -> float:
        return read_status(self.pid).get("VmHWM", 0) / 1024

    def steady_rss_mb(self, since: float) -> float:
        recent = [kb for t, kb in self.samples if t >= since]
        return statistics.median(recent) / 1024 if recent else 0.0

    async def stop(self) -> float:
        """SIGTERM (graceful: it drains), SIGKILL after STOP_TIMEOUT; seconds it took to exit.

        Afterwards `peak_kb` is its peak RSS (VmHWM, read every POLL seconds until it exits).
        """
        assert self.process is not None
        process, begin = self.process, time.monotonic()
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            await asyncio.to_thread(process.wait, STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            print(
                f"  !! {self.label}: no exit {STOP_TIMEOUT:.0f} s after SIGTERM: killed", flush=True
            )
            process.kill()
            await asyncio.to_thread(process.wait)
        if self._sampler is not None:
            await self._sampler
        return time.monotonic() - begin


class ShadowLoad(threading.Thread):
    """Publishes `rate` shadow changes per second for `seconds` (paho, QoS 1, plain listener).

    Each change sets `desired.bench_seq` to a run-wide sequence number, round-robin over
    `names` from `offset`; `sent` holds (seq, monotonic time of the publish call). As a
    device (`as_service=False`): an update request on `$aws/things/<name>/shadow/update`,
    which the stand-in's shadow service applies and answers with the documents the bridge
    reads. As the shadow service (`as_service=True`): those `update/documents` messages
    themselves, as AWS IoT publishes them, at a rate the stand-in's service cannot reach;
    versions start at a million so they are newer than any the stand-in gave out.
    """

    def __init__(
        self,
        plain: str,
        names: list[str],
        rate: float,
        seconds: float,
        *,
        offset: int = 0,
        as_service: bool = False,
    ) -> None:
        super().__init__(daemon=True)
        host, _, port = plain.rpartition(":")
        self.address = (host, int(port))
        self.names, self.rate, self.seconds, self.offset = names, rate, seconds, offset
        self.as_service = as_service
        self.sent: list[tuple[int, float]] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._publish()
        except BaseException as exc:  # surfaced by the caller
            self.error = exc

    def _message(self, name: str, seq: int) -> tuple[str, str]:
        if not self.as_service:
            body = {"state": {"desired": {"bench_seq": seq}}}
            return f"$aws/things/{name}/shadow/update", json.dumps(body)
        state = {"desired": {"bench_seq": seq}, "reported": {"online": True}}
        current = {"state": state, "metadata": {}, "version": SERVICE_VERSIONS + seq}
        body = {"previous": None, "current": current, "timestamp": int(time.time())}
        return f"$aws/things/{name}/shadow/update/documents", json.dumps(body)

    def _publish(self) -> None:
        client = mqtt.Client(client_id=f"bench-load-{secrets.token_hex(4)}")
        client.max_inflight_messages_set(1000)
        client.connect(*self.address)
        client.loop_start()
        info = None
        try:
            start = time.monotonic()
            for i in range(int(self.rate * self.seconds)):
                delay = start + i / self.rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                seq = next(_seqs)
                topic, body = self._message(self.names[(self.offset + i) % len(self.names)], seq)
                self.sent.append((seq, time.monotonic()))
                info = client.publish(topic, body, qos=1)
            if info is not None:
                info.wait_for_publish(timeout=30)
        finally:
            client.loop_stop()
            client.disconnect()

    async def run_to_end(self) -> None:
        self.start()
        await asyncio.to_thread(self.join)
        if self.error is not None:
            raise self.error


class DocumentsTap:
    """Stamps each `update/documents` message carrying `bench_seq` as a subscriber gets it:
    when the stand-in's shadow service has answered, i.e. when the bridge can have it."""

    def __init__(self, plain: str) -> None:
        host, _, port = plain.rpartition(":")
        self.seen: dict[int, float] = {}
        self._client = mqtt.Client(client_id=f"bench-tap-{secrets.token_hex(4)}")
        self._client.on_message = self._message
        self._client.connect(host, int(port))
        self._client.subscribe("$aws/things/+/shadow/update/documents", qos=0)
        self._client.loop_start()

    def _message(self, _client: Any, _userdata: Any, message: Any) -> None:
        with contextlib.suppress(ValueError, AttributeError, TypeError):
            current = json.loads(message.payload)["current"]
            seq = current["state"]["desired"]["bench_seq"]
            if isinstance(seq, int):
                self.seen.setdefault(seq, time.monotonic())

    def close(self) -> None:
        self._client.loop_stop()
        self._client.disconnect()


class ThingCreator(threading.Thread):
    """Creates `rate` things per second for `seconds` through boto3 (the control plane)."""

    def __init__(self, env: dict[str, str], prefix: str, rate: float, seconds: float) -> None:
        super().__init__(daemon=True)
        self.iot = boto3.client(
            "iot",
            endpoint_url=env["AWS_ENDPOINT_URL"],
            region_name=env["AWS_REGION"],
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
            config=botocore.config.Config(retries={"max_attempts": 3}),
        )
        self.prefix, self.rate, self.seconds = prefix, rate, seconds
        self.names: list[str] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            start = time.monotonic()
            for i in range(int(self.rate * self.seconds)):
                delay = start + i / self.rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                name = f"{self.prefix}{i:05d}"
                self.iot.create_thing(thingName=name)
                self.names.append(name)
        except BaseException as exc:  # surfaced by the caller
            self.error = exc


@contextlib.contextmanager
def principal_table_deferred(stack: SimStack) -> Iterator[None]:
    """Let the stand-in rebuild the broker's principal table in the background.

    Up to 5,000 certificates it rebuilds the whole table on every grant (a certificate,
    policy or thing attached), which makes a 10,000-thing estate quadratic (30 s per 1,000
    things at 1,000, longer each time); above that it coalesces grants in a thread. Here it
    always coalesces while the estate is built, and flushes once at the end. No device
    connects during the benchmark, so nothing depends on the table's timing.
    """
    saved = certs._SYNC_CERTIFICATES
    certs._SYNC_CERTIFICATES = 0
    try:
        yield
    finally:
        certs._SYNC_CERTIFICATES = saved
        if stack.aws._certs is not None:
            stack.aws._certs.flush()


def grow_estate(stack: SimStack, names: list[str], total: int) -> None:
    """Plain things with a classic shadow, through moto's backend as `build_estate` does."""
    backend, shadows = stack.aws.moto.iot, stack.aws.shadows
    assert shadows is not None
    for index in range(len(names), total):
        name = f"plain-{index:06d}"
        backend.create_thing(
            thing_name=name, thing_type_name=None, attribute_payload={"attributes": {"n": "1"}}
        )
        body = {"state": {"desired": {"interval_s": 60}, "reported": {"online": True}}}
        shadows.apply_update(name, None, body)
        names.append(name)
