"""The telemetry relay end to end: throughput, CPU per 10,000 messages, latency at half load.

Everything runs on the local stand-ins (`bridge_sim.stack.sim_stack` in this process, the
emulator unthrottled) and the daemon (mirror + relay) runs as a child process, so its CPU
is its own. `--devices` things are created and mirrored first (import job); then the
bench publishes QoS 1 telemetry on `dt/<thing>` from the stand-in's loopback listener,
round-robin over every device, and the relay sends each message as that device's
`aws-bridge` module, over AMQP 1.0 (python-qpid-proton, every module identity multiplexed
on a connection per 1,000) and over azure-iot-device MQTT connections (one per module).

1. Throughput: `--messages` published as fast as the broker takes them; the rate is the
   messages over the time from the first publish to the daemon's
   `bridge_relay_messages_total{outcome="sent"}` reaching them all; CPU is the daemon's
   (user + system, all threads) over that time, scaled to 10,000 messages. AMQP over every
   device, after a warm-up pass of one message per device (which authorizes every module
   identity: a CBS put-token and a link each); then MQTT twice: with the default pool of
   64 module connections (fewer than the devices: most messages pay a new connection)
   and, over `--warm-devices` devices, with a pool twice that (after a warm-up pass that
   opens every connection): the transport's best case. A pool as large
   as a 1,000-device fleet is not measured: azure-iot-device stalls at about 330 open
   connections in one process here (sends time out after 30 s, 1,080 threads).
2. Latency at half the AMQP pass's maximum, on a fresh daemon warmed up the same way:
   each message carries its publish time; end to end is the emulator's enqueued time minus
   it (same clock), p50/p99.
3. Baseline in the same run: mosquitto's own broker-to-broker bridge (two local brokers,
   `topic dt/# in 1`: QoS 1 on both sides) relaying the same stream; rate and CPU of the
   bridging broker per 10,000 messages.

    .venv/bin/python bench/relay.py [--devices 1000] [--messages 3000] [--transports amqp,mqtt]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bridge.logging import configure_logging

configure_logging("WARNING")

import aiohttp  # noqa: E402 - after logging is quiet
import boto3  # noqa: E402
import paho.mqtt.client as mqtt  # noqa: E402
from _mirror_rig import CpuMeter, Daemon, free_port, percentile  # noqa: E402 - next to this file

from bridge_sim.stack import SimStack, sim_stack  # noqa: E402

SENT = ("bridge_relay_messages_total", frozenset({("outcome", "sent")}))
LAG_SUM = ("bridge_relay_lag_seconds_sum", frozenset())
LAG_COUNT = ("bridge_relay_lag_seconds_count", frozenset())
IN_FLIGHT = 100  # the stand-in's max_inflight_messages: AWS IoT's limit per connection


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def create_things(env: dict[str, str], names: list[str]) -> None:
    iot = boto3.client(
        "iot",
        region_name=env["AWS_REGION"],
        endpoint_url=env["AWS_ENDPOINT_URL"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
    )
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda name: iot.create_thing(thingName=name), names))


class Publisher:
    """A paho QoS 1 publisher on a broker's plain listener."""

    def __init__(self, host: str, port: int, client_id: str) -> None:
        self.client = mqtt.Client(client_id=client_id, protocol=mqtt.MQTTv311)
        self.client.max_inflight_messages_set(1000)
        self.client.max_queued_messages_set(0)
        self.client.connect(host, port)
        self.client.loop_start()

    def stream(self, topics: list[str], count: int, rate: float | None = None) -> float:
        """Publish `count` messages round-robin over `topics`; returns the first publish time."""
        began = time.monotonic()
        infos = []
        for n in range(count):
            if rate:
                due = began + n / rate
                while (delay := due - time.monotonic()) > 0:
                    time.sleep(delay)
            body = json.dumps({"n": n, "t": time.time()})
            infos.append(self.client.publish(topics[n % len(topics)], body, qos=1))
        for info in infos:
            info.wait_for_publish(30)
        return began

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


async def relayed(daemon: Daemon) -> float:
    with contextlib.suppress(aiohttp.ClientError):
        return (await daemon.metrics()).get(SENT, 0.0)
    return 0.0


async def until_relayed(daemon: Daemon, total: float, timeout: float) -> float:
    deadline = time.monotonic() + timeout
    while (done := await relayed(daemon)) < total:
        daemon.check_alive()
        if time.monotonic() > deadline:
            raise SystemExit(f"only {done:.0f} of {total:.0f} relayed after {timeout:.0f} s")
        await asyncio.sleep(0.1)
    return time.monotonic()


async def throughput(
    stack: SimStack, daemon: Daemon, names: list[str], messages: int, label: str
) -> float:
    host, port = stack.env()["SIM_AWS_MQTT_PLAIN"].rsplit(":", 1)
    publisher = Publisher(host, int(port), f"bench-{label}")
    topics = [f"dt/{name}" for name in names]
    before, cpu0 = await relayed(daemon), cpu_seconds(daemon.pid)
    lag0 = await daemon.metrics()
    meter = CpuMeter(daemon.pid)
    began = await asyncio.to_thread(publisher.stream, topics, messages)
    ended = await until_relayed(daemon, before + messages, timeout=1800)
    cpu = cpu_seconds(daemon.pid) - cpu0
    lag1 = await daemon.metrics()
    publisher.close()
    rate = messages / (ended - began)
    # The relay acknowledges a message to AWS only once IoT Hub accepted it, so a session
    # holds rate x time-in-bridge messages unacknowledged (Little's law). AWS IoT stops at
    # 100 per connection; the stand-in's mosquitto 2.0.11 lets more through (see AckValve).
    count = lag1.get(LAG_COUNT, 0.0) - lag0.get(LAG_COUNT, 0.0)
    mean_lag = (lag1.get(LAG_SUM, 0.0) - lag0.get(LAG_SUM, 0.0)) / count if count else 0.0
    print(
        f"  {label}: {messages} messages over {len(names)} devices in {ended - began:.1f} s = "
        f"{rate:.0f} msg/s; daemon CPU {cpu / messages * 10_000:.1f} s per 10,000 messages\n"
        f"    mean time from arrival to IoT Hub accept {mean_lag * 1000:.1f} ms, so about "
        f"{rate * mean_lag:.0f} messages unacknowledged at a time (AWS IoT allows "
        f"{IN_FLIGHT} and about 100 publishes/s per session: BRIDGE_RELAY__SESSIONS)\n"
        f"    {meter.report()}",
        flush=True,
    )
    return rate


async def latency(stack: SimStack, daemon: Daemon, names: list[str], rate: float) -> None:
    host, port = stack.env()["SIM_AWS_MQTT_PLAIN"].rsplit(":", 1)
    count = max(200, min(3000, int(rate * 20)))
    publisher = Publisher(host, int(port), "bench-latency")
    before = await relayed(daemon)
    await asyncio.to_thread(publisher.stream, [f"dt/{n}" for n in names], count, rate)
    await until_relayed(daemon, before + count, timeout=600)
    publisher.close()
    service = stack.iothub.service
    url = f"https://{service.host}:{service.port}/_emulator/telemetry"
    async with (
        aiohttp.ClientSession() as client,
        client.get(url, params={"limit": str(count)}, ssl=False) as answer,
    ):
        events = await answer.json()
    lags = [e["enqueuedTimeMs"] / 1000 - json.loads(e["body"])["t"] for e in events]
    print(
        f"  latency at {rate:.0f} msg/s ({count} messages, publish to IoT Hub enqueue): "
        f"p50 {percentile(lags, 0.5) * 1000:.1f} ms, p99 {percentile(lags, 0.99) * 1000:.1f} ms",
        flush=True,
    )


@contextlib.contextmanager
def mosquitto(workdir: Path, name: str, extra: str = "") -> Iterator[tuple[int, Any]]:
    port = free_port()
    conf = workdir / f"{name}.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\nmax_queued_messages 100000\n"
        f"max_inflight_messages 100\n{extra}"
    )
    with (workdir / f"{name}.log").open("ab") as log:
        process = subprocess.Popen(["mosquitto", "-c", str(conf)], stdout=log, stderr=log)  # noqa: S603, S607
    try:
        time.sleep(0.5)
        yield port, process
    finally:
        process.terminate()
        process.wait(10)


def mosquitto_bridge(workdir: Path, messages: int, devices: int) -> None:
    """Broker B bridges `dt/#` in from broker A at QoS 1; we publish on A, read on B."""
    with mosquitto(workdir, "a") as (port_a, _a):
        extra = (
            f"connection a\naddress 127.0.0.1:{port_a}\ntopic dt/# in 1\n"
            "cleansession false\nclientid bench-bridge\n"
        )
        with mosquitto(workdir, "b", extra) as (port_b, b):
            got = threading.Event()
            count = [0]

            def received(_c: Any, _u: Any, _m: Any) -> None:
                count[0] += 1
                if count[0] >= messages:
                    got.set()

            sub = mqtt.Client(client_id="bench-sub", protocol=mqtt.MQTTv311)
            sub.on_message = received
            sub.connect("127.0.0.1", port_b)
            sub.subscribe("dt/#", qos=1)
            sub.loop_start()
            time.sleep(1.0)  # the bridge connection and subscriptions are up
            publisher = Publisher("127.0.0.1", port_a, "bench-pub")
            cpu0 = cpu_seconds(b.pid)
            began = publisher.stream([f"dt/d{i}" for i in range(devices)], messages)
            got.wait(300)
            ended = time.monotonic()
            cpu = cpu_seconds(b.pid) - cpu0
            publisher.close()
            sub.loop_stop()
            print(
                f"  mosquitto bridge (QoS 1 both sides): {count[0]} messages in "
                f"{ended - began:.2f} s = {count[0] / (ended - began):.0f} msg/s; bridging "
                f"broker CPU {cpu / messages * 10_000:.2f} s per 10,000 messages",
                flush=True,
            )


def relay_daemon(
    workdir: Path,
    env: dict[str, str],
    label: str,
    pool: int,
    transport: str = "mqtt",
    *,
    in_flight: int | None = None,
) -> Daemon:
    daemon = Daemon(workdir, env, label)
    extra = {
        "BRIDGE_RELAY__ENABLED": "true",
        "BRIDGE_RELAY__TOPICS": '["dt/+=2"]',
        "BRIDGE_RELAY__TRANSPORT": transport,
        "BRIDGE_RELAY__CONNECTIONS": str(pool),
        "BRIDGE_RELAY__SESSION_EXPIRY": "60",
        "BRIDGE_CUTOVER__CONNECTION_EVENTS": "false",
        **({"BRIDGE_RELAY__IN_FLIGHT": str(in_flight)} if in_flight else {}),
    }
    with daemon.env_file.open("a") as file:
        file.write("".join(f"{k}={v}\n" for k, v in extra.items()))
    return daemon


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-relay-") as tmp:
        workdir = Path(tmp)
        print(f"relay bench: {args.devices} devices, {args.messages} messages per pass", flush=True)
        mosquitto_bridge(workdir, args.messages * 3, args.devices)
        async with sim_stack(workdir / "sim") as stack:
            env = stack.env()
            names = [f"rb-{i:05d}" for i in range(args.devices)]
            await asyncio.to_thread(create_things, env, names)
            warm = names[: args.warm_devices]
            transports = args.transports.split(",")
            # (label, transport, pool, devices, warm up every connection or identity first)
            passes: list[tuple[str, str, int, list[str], bool]] = []
            if "amqp" in transports:
                passes.append(("amqp", "amqp", 64, names, True))
            if "mqtt" in transports:
                passes.append(("mqtt pool 64", "mqtt", 64, names, False))
                passes.append(
                    (
                        f"mqtt pool {2 * len(warm)}, {len(warm)} devices",
                        "mqtt",
                        2 * len(warm),
                        warm,
                        True,
                    )
                )
            best: dict[str, float] = {}
            for label, transport, pool, fleet, warm_up in passes:
                daemon = relay_daemon(
                    workdir, env, label, pool, transport, in_flight=args.in_flight
                )
                daemon.start()
                try:
                    ready = await daemon.until_ready(timeout=1800)
                    print(f"  {label}: daemon ready (devices mirrored) in {ready:.0f} s")
                    if warm_up:
                        # One message per device opens every connection (or authorizes
                        # every identity on the multiplexed connections).
                        await throughput(stack, daemon, fleet, len(fleet), f"{label} warm-up")
                    rate = await throughput(stack, daemon, fleet, args.messages, label)
                    best[transport] = max(best.get(transport, 0.0), rate)
                    print(f"  {label}: daemon RSS {daemon.rss_mb():.0f} MB", flush=True)
                finally:
                    await daemon.stop()
            # Latency at half the best transport's maximum, on a fresh, warm daemon.
            transport = "amqp" if "amqp" in best else "mqtt"
            fleet = names if transport == "amqp" else warm
            daemon = relay_daemon(
                workdir, env, "latency", 2 * len(warm), transport, in_flight=args.in_flight
            )
            daemon.start()
            try:
                await daemon.until_ready(timeout=1800)
                await throughput(stack, daemon, fleet, len(fleet), f"{transport} latency warm-up")
                await latency(stack, daemon, fleet, best[transport] / 2)
            finally:
                await daemon.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument(
        "--transports", default="amqp,mqtt", help="relay transports to measure, comma-separated"
    )
    parser.add_argument(
        "--warm-devices",
        type=int,
        default=100,
        help="devices of the warm pass, whose connections all stay open (azure-iot-device "
        "stalls past about 330 connections in one process on this machine)",
    )
    parser.add_argument(
        "--in-flight", type=int, default=None, help="BRIDGE_RELAY__IN_FLIGHT (default: 100)"
    )
    asyncio.run(main(parser.parse_args()))
