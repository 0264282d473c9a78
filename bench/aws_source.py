"""AwsSource against a plain aiomqtt subscriber, on the AWS stand-in's mutual-TLS endpoint.

A fast publisher (awscrt MQTT 5 on the broker's plain loopback listener, QoS 1, up to
1000 publishes in flight, in its own thread) sends `$aws/events/thing/...` registry events
stamped with `time.monotonic_ns()`. Each subscriber connects with the bridge's certificate,
decodes every message with `bridge.aws.codec.decode` and stops at the last one:

- AwsSource (awscrt MQTT 5, persistent session, manual PUBACK after the consumer took the
  message, Receive Maximum = --max-pending);
- aiomqtt (paho, MQTT 3.1.1, QoS 1, PUBACK sent by paho on receipt).

Two runs each: `flood` (publish as fast as possible: deliveries per second, from the first
publish to the last delivery) and `paced` (at --rate msg/s, below saturation: receive
latency p50/p99, publish to the consumer holding the decoded message).

    .venv/bin/python bench/aws_source.py --messages 20000
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import ssl
import statistics
import tempfile
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiomqtt
from awscrt import mqtt5

from bridge.logging import configure_logging

# Module loggers bind at import, so quieten them before the stand-in's modules load.
configure_logging("WARNING")

from bridge.aws.codec import decode  # noqa: E402
from bridge.aws.source import AwsSource  # noqa: E402
from bridge.config import CloudSettings  # noqa: E402
from bridge_sim.aws.standin import AwsStandIn  # noqa: E402

TOPIC = "$aws/events/thing/bench-{n}/updated"
Consume = Callable[[int], Awaitable[list[float]]]


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def report(label: str, count: int, elapsed: float, latencies: list[float], extra: str = "") -> None:
    print(
        f"{label:<18} {count / elapsed:>9.0f} msg/s   "
        f"p50 {percentile(latencies, 0.50) * 1000:8.2f} ms   "
        f"p99 {percentile(latencies, 0.99) * 1000:8.2f} ms   "
        f"(mean {statistics.fmean(latencies) * 1000:.2f} ms, {count} messages{extra})"
    )


def publish(aws: AwsStandIn, first: int, count: int, rate: float) -> None:
    """QoS 1 registry events from the loopback listener; blocks until all are PUBACKed."""
    assert aws.broker is not None
    connected = threading.Event()
    client = mqtt5.Client(
        mqtt5.ClientOptions(
            host_name=aws.host,
            port=aws.broker.plain_port,
            connect_options=mqtt5.ConnectPacket(client_id="bench-publisher"),
            on_lifecycle_event_connection_success_fn=lambda _data: connected.set(),
        )
    )
    client.start()
    if not connected.wait(10):
        raise RuntimeError("the publisher did not connect")
    window: deque[object] = deque()
    started = time.monotonic()
    for n in range(first, first + count):
        if rate:
            delay = started + (n - first) / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        body = {"thingName": f"bench-{n}", "versionNumber": n + 1, "sentNs": time.monotonic_ns()}
        packet = mqtt5.PublishPacket(
            topic=TOPIC.format(n=n), payload=json.dumps(body).encode(), qos=mqtt5.QoS.AT_LEAST_ONCE
        )
        window.append(client.publish(packet))
        if len(window) >= 1000:
            window.popleft().result(30)  # type: ignore[attr-defined]
    while window:
        window.popleft().result(30)  # type: ignore[attr-defined]
    client.stop()


def bridge_client(aws: AwsStandIn, client_id: str) -> aiomqtt.Client:
    """aiomqtt over mutual TLS with the bridge's certificate, as AwsSource connects."""
    assert aws.broker is not None
    context = ssl.create_default_context(cafile=str(aws.root_ca_path))
    context.load_cert_chain(str(aws.bridge_cert_path), str(aws.bridge_key_path))
    return aiomqtt.Client(aws.host, aws.broker.tls_port, identifier=client_id, tls_context=context)


def latency(payload: bytes) -> float:
    return (time.monotonic_ns() - json.loads(payload)["sentNs"]) / 1e9


async def through_source(source: AwsSource, count: int, *, peak: list[int]) -> list[float]:
    latencies = []
    async for delivery in source.deliveries():
        peak[0] = max(peak[0], source.pending + 1)
        if delivery.topic.startswith("$aws/events/thing/bench-"):
            assert delivery.event is not None
            latencies.append(latency(delivery.payload))
        delivery.ack()  # an instant store
        if len(latencies) == count:
            return latencies
    raise RuntimeError("the source closed early")


async def through_aiomqtt(client: aiomqtt.Client, count: int) -> list[float]:
    latencies = []
    async for message in client.messages:
        assert isinstance(message.payload, bytes)
        decode(message.topic.value, message.payload)
        latencies.append(latency(message.payload))
        if len(latencies) == count:
            return latencies
    raise RuntimeError("aiomqtt stopped early")


async def measure(
    aws: AwsStandIn, consume: Consume, first: int, count: int, rate: float
) -> tuple[float, list[float]]:
    started = time.perf_counter()
    receiving = asyncio.create_task(consume(count))
    await asyncio.to_thread(publish, aws, first, count, rate)
    latencies = await asyncio.wait_for(receiving, 120)
    return time.perf_counter() - started, latencies


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as workdir:
        async with AwsStandIn(workdir=Path(workdir), aws_quotas=False) as aws:
            cloud = CloudSettings(**aws.env())  # type: ignore[arg-type]
            first = 0
            for mode, rate in (("flood", 0.0), ("paced", args.rate)):
                count = args.messages if rate == 0 else min(args.messages, int(rate * 5))
                # A client id per run: a session of an earlier run would have queued the
                # messages of the runs between.
                async with AwsSource(
                    cloud, client_id=f"iot-bridge-bench-{mode}", max_pending=args.max_pending
                ) as source:
                    peak = [0]
                    elapsed, latencies = await measure(
                        aws,
                        functools.partial(through_source, source, peak=peak),
                        first,
                        count,
                        rate,
                    )
                report(f"AwsSource {mode}", count, elapsed, latencies, f", inbox peak {peak[0]}")
                first += count
                async with bridge_client(aws, "iot-bridge-bench-aiomqtt") as client:
                    await client.subscribe("$aws/events/thing/+/+", qos=1)
                    elapsed, latencies = await measure(
                        aws, functools.partial(through_aiomqtt, client), first, count, rate
                    )
                report(f"aiomqtt {mode}", count, elapsed, latencies)
                first += count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--rate", type=float, default=2000, help="msg/s of the paced run")
    parser.add_argument("--max-pending", type=int, default=100, help="AwsSource Receive Maximum")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
