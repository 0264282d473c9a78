"""Reading the emulator's Event Hubs-compatible endpoint with Microsoft's EventHubConsumerClient.

The endpoint runs in a child process (as the emulator does beside a relay), so the reader
here has a core of its own. Each scenario gets a fresh endpoint and log:

- backlog, one client on all partitions (`receive` without a partition id, as most
  consumers read), then the baseline: one client per partition, in the same loop;
- live: the child appends at `--rate` events/s for `--seconds` while one all-partition
  client reads;
- the synchronous client (`azure.eventhub.EventHubConsumerClient`) on all partitions and
  one per partition, on a smaller backlog and with a time limit: its event processor polls
  the partitions in turn and waits its socket timeout (0.2 s) on each that has nothing.

For each: events/s read (first `receive` call to last event), the reader's CPU per event,
and p50/p99 of enqueued-to-callback latency (for a backlog that is mostly its age).

    .venv/bin/python bench/eventhub_read.py --events 60000
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from bridge.logging import configure_logging

# Module loggers bind at import, so quieten them before the emulator's modules load.
configure_logging("WARNING")

from azure.eventhub import EventHubConsumerClient as SyncConsumerClient  # noqa: E402
from azure.eventhub.aio import EventHubConsumerClient  # noqa: E402

from bridge_sim.iothub.eventhub import AmqpEndpoint, EventLog, wire  # noqa: E402

KEY = base64.b64encode(b"bench-eventhub-read-key-32bytes!").decode()
HUB = "benchhub"
PARTITIONS = 4  # the log's default, as IoT Hub's built-in endpoint
BODY_PAD = "x" * 160  # about the size of a relayed telemetry message


# --- the endpoint, in a child process -------------------------------------------------


def _append(log: EventLog, number: int, devices: int) -> None:
    device = f"bench-dev-{number % devices}"
    log.append(
        body=json.dumps({"n": number, "device": device, "pad": BODY_PAD}).encode(),
        device_id=device,
        properties={"awsTopic": f"dt/{device}/telemetry", "n": str(number)},
        message_id=f"{device}-{number}",
        content_type="application/json",
        content_encoding="utf-8",
    )


async def _serve(devices: int, *, general_encoder: bool) -> None:
    """Child: serve a log; stdin says `store N`, `live RATE SECONDS`, `cpu`...; stdout answers."""
    if general_encoder:
        # What the endpoint did before wire.py: azure-eventhub's encoder for every event.
        wire.encode_event = lambda _event: None
    log = EventLog(hub_name=HUB)
    endpoint = AmqpEndpoint(
        log=log, hub_name=HUB, namespace="bench-ns", shared_access_keys={"bench": KEY}
    )
    loop = asyncio.get_running_loop()
    commands: asyncio.Queue[str] = asyncio.Queue()
    threading.Thread(
        target=lambda: [loop.call_soon_threadsafe(commands.put_nowait, line) for line in sys.stdin],
        daemon=True,
    ).start()
    appended = 0
    async with endpoint:
        print(endpoint.port, flush=True)
        while (command := (await commands.get()).split()) and command[0] != "quit":
            if command[0] == "store":
                for _ in range(int(command[1])):
                    _append(log, appended, devices)
                    appended += 1
                print("stored", flush=True)
            elif command[0] == "cpu":
                print(time.process_time(), flush=True)
            elif command[0] == "receivers":
                print(endpoint.receiver_count, flush=True)
            elif command[0] == "live":
                rate, seconds = int(command[1]), float(command[2])
                base, total, started = appended, int(rate * seconds), loop.time()
                while appended - base < total:
                    # Catch up with the schedule every tick, so the rate holds under load.
                    due = min(total, int((loop.time() - started) * rate))
                    for _ in range(due - (appended - base)):
                        _append(log, appended, devices)
                        appended += 1
                    await asyncio.sleep(0.005)
                print(f"{total} written in {loop.time() - started:.2f} s", flush=True)


class Endpoint:
    """The child process serving the endpoint, driven line by line."""

    def __init__(self, devices: int, *, general_encoder: bool = False) -> None:
        flags = ["--general-encoder"] if general_encoder else []
        self.process = subprocess.Popen(  # noqa: S603 - this script, run as the child
            [sys.executable, __file__, "--serve", "--devices", str(devices), *flags],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        self.port = int(self.process.stdout.readline())

    def ask(self, command: str) -> str:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return self.process.stdout.readline().strip()

    def cpu(self) -> float:
        """The child's CPU seconds so far."""
        return float(self.ask("cpu"))

    def close(self) -> None:
        with contextlib.suppress(BrokenPipeError):
            self.ask("quit")
        self.process.wait(10)

    @property
    def connection_string(self) -> str:
        return (
            f"Endpoint=sb://127.0.0.1:{self.port}/;SharedAccessKeyName=bench;"
            f"SharedAccessKey={KEY};EntityPath={HUB};UseDevelopmentEmulator=true"
        )


# --- readers --------------------------------------------------------------------------


@dataclass
class Reading:
    """What one scenario saw."""

    label: str
    expected: int
    started: float = field(default_factory=time.time)
    cpu_started: float = field(default_factory=time.process_time)
    latencies: list[float] = field(default_factory=list)
    last: dict[str, int] = field(default_factory=dict)
    out_of_order: int = 0
    finished: float = 0.0
    cpu: float = 0.0
    endpoint_cpu: float = float("nan")

    def on_event(self, partition: str, event: Any) -> None:
        now = time.time()
        self.latencies.append(now - event.enqueued_time.timestamp())
        if event.sequence_number != self.last.get(partition, -1) + 1:
            self.out_of_order += 1
        self.last[partition] = event.sequence_number
        if len(self.latencies) >= self.expected:
            self.stop()

    def stop(self) -> None:
        if not self.finished:
            self.finished = time.time()
            self.cpu = time.process_time() - self.cpu_started

    def row(self) -> str:
        count = len(self.latencies)
        elapsed = (self.finished or time.time()) - self.started
        ordered = sorted(self.latencies) or [float("nan")]

        def pct(fraction: float) -> float:
            return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] * 1000

        cpu_us = self.cpu / count * 1e6 if count else float("nan")
        endpoint_us = self.endpoint_cpu / count * 1e6 if count else float("nan")
        return (
            f"{self.label:<40} {count:>6}/{self.expected:<6} {count / elapsed:>7.0f} "
            f"{pct(0.5):>8.0f} {pct(0.99):>8.0f} {cpu_us:>7.0f} {endpoint_us:>7.0f}  "
            f"{'in order' if not self.out_of_order else f'{self.out_of_order} out of order'}"
        )


async def read_async(
    endpoint: Endpoint, reading: Reading, *, per_partition: bool, limit: float
) -> Reading:
    done = asyncio.Event()

    async def on_event(context: Any, event: Any) -> None:
        reading.on_event(context.partition_id, event)
        if reading.finished:
            done.set()

    ids = [str(n) for n in range(PARTITIONS)] if per_partition else [None]
    clients = [
        EventHubConsumerClient.from_connection_string(
            endpoint.connection_string, consumer_group="$Default"
        )
        for _ in ids
    ]
    tasks = [
        asyncio.create_task(
            client.receive(on_event, starting_position="-1", partition_id=partition)
        )
        for client, partition in zip(clients, ids, strict=True)
    ]
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(done.wait(), limit)
    reading.stop()
    print(reading.row(), flush=True)
    for client in clients:
        await client.close()
    for task in tasks:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    return reading


def read_sync(
    endpoint: Endpoint, label: str, expected: int, *, per_partition: bool, limit: float
) -> Reading:
    reading = Reading(label, expected)
    lock = threading.Lock()
    ids = [str(n) for n in range(PARTITIONS)] if per_partition else [None]
    clients = [
        SyncConsumerClient.from_connection_string(
            endpoint.connection_string, consumer_group="$Default"
        )
        for _ in ids
    ]

    def on_event(context: Any, event: Any) -> None:
        with lock:
            reading.on_event(context.partition_id, event)

    def receive(client: SyncConsumerClient, partition: str | None) -> None:
        with contextlib.suppress(Exception):
            client.receive(on_event, starting_position="-1", partition_id=partition)

    threads = [
        threading.Thread(target=receive, args=(client, partition), daemon=True)
        for client, partition in zip(clients, ids, strict=True)
    ]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + limit
    while not reading.finished and time.monotonic() < deadline:
        time.sleep(0.05)
    reading.stop()
    print(reading.row(), flush=True)
    for client in clients:
        client.close()
    for thread in threads:
        thread.join(10)
    return reading


async def live(endpoint: Endpoint, rate: int, seconds: float) -> tuple[Reading, str]:
    reading = Reading(f"live {rate}/s, one client", int(rate * seconds))
    reader = asyncio.create_task(
        read_async(endpoint, reading, per_partition=False, limit=seconds + 60)
    )
    # The writer starts once the client has a link on every partition; rates count from then.
    while int(await asyncio.to_thread(endpoint.ask, "receivers")) < PARTITIONS:  # noqa: ASYNC110 - the count lives in the child
        await asyncio.sleep(0.1)
    reading.started, reading.cpu_started = time.time(), time.process_time()
    answer = await asyncio.to_thread(endpoint.ask, f"live {rate} {seconds}")
    await reader
    return reading, answer


async def backlog(
    args: argparse.Namespace, label: str, *, per_partition: bool, general_encoder: bool = False
) -> Reading:
    endpoint = Endpoint(args.devices, general_encoder=general_encoder)
    try:
        endpoint.ask(f"store {args.events}")
        cpu = endpoint.cpu()
        reading = await read_async(
            endpoint,
            Reading(label, args.events),
            per_partition=per_partition,
            limit=max(60.0, args.events / 300),
        )
        reading.endpoint_cpu = endpoint.cpu() - cpu
    finally:
        endpoint.close()
    return reading


async def live_writes(args: argparse.Namespace) -> Reading:
    endpoint = Endpoint(args.devices)
    try:
        cpu = endpoint.cpu()
        reading, answer = await live(endpoint, args.rate, args.seconds)
        # Here the endpoint's figure includes appending (the writer runs in the child).
        reading.endpoint_cpu = endpoint.cpu() - cpu
        reading.label += f" ({answer.split(' written in ')[1]})"
    finally:
        endpoint.close()
    return reading


async def sync_backlog(args: argparse.Namespace, label: str, *, per_partition: bool) -> Reading:
    endpoint = Endpoint(args.devices)
    try:
        endpoint.ask(f"store {args.sync_events}")
        cpu = endpoint.cpu()
        reading = await asyncio.to_thread(
            read_sync,
            endpoint,
            label,
            args.sync_events,
            per_partition=per_partition,
            limit=args.sync_limit,
        )
        reading.endpoint_cpu = endpoint.cpu() - cpu
    finally:
        endpoint.close()
    return reading


HEADER = (
    f"{'scenario':<40} {'read/expected':>13} {'ev/s':>7} {'p50 ms':>8} {'p99 ms':>8} "
    f"{'reader':>7} {'endpt':>7}  (CPU us per event)"
)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=60_000, help="backlog to read")
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--rate", type=int, default=6000, help="live writes per second")
    parser.add_argument("--seconds", type=float, default=10.0, help="live duration")
    parser.add_argument("--sync-events", type=int, default=2000)
    parser.add_argument("--sync-limit", type=float, default=30.0, help="seconds per sync run")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--general-encoder", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        await _serve(args.devices, general_encoder=args.general_encoder)
        return
    print(HEADER, flush=True)
    readings = [
        await backlog(args, "backlog, one client, all partitions", per_partition=False),
        await backlog(args, "backlog, one client per partition", per_partition=True),
        await backlog(
            args, "  same, endpoint on the SDK's encoder", per_partition=False, general_encoder=True
        ),
        await live_writes(args),
        await sync_backlog(args, "sync client, all partitions", per_partition=False),
        await sync_backlog(args, "sync client, one per partition", per_partition=True),
    ]
    print(HEADER)
    for reading in readings:
        print(reading.row())


if __name__ == "__main__":
    asyncio.run(main())
