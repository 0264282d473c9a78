"""Telemetry ingest of the emulated IoT Hub's device endpoint (MQTT over TLS).

The endpoint runs on its own event loop thread, throttling off. Two senders, one after the
other, each its own registered SAS device:

- the device SDK (`azure.iot.device.IoTHubDeviceClient`, synchronous): one message at a
  time, as an application calling `send_message` in a loop does;
- a raw paho-mqtt client keeping up to `--window` QoS 1 publishes in flight.

For each: messages per second ingested (counted in the event log) and the p50/p99 latency
from `publish` to its PUBACK.

    .venv/bin/python bench/iothub_ingest.py --messages 2000
"""

from __future__ import annotations

import argparse
import asyncio
import ssl
import statistics
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable

import paho.mqtt.client as mqtt
from azure.iot.device import IoTHubDeviceClient, Message

from bridge.logging import configure_logging

# Module loggers bind at import, so quieten them before the emulator's modules load.
configure_logging("WARNING")

from bridge_sim.iothub.mqtt.harness import EmulatedHub, emulated_hub  # noqa: E402
from bridge_sim.iothub.sas import generate_token  # noqa: E402

PAYLOAD = b'{"temperature": 21.5, "humidity": 40, "pad": "' + b"x" * 200 + b'"}'


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def report(label: str, count: int, elapsed: float, latencies: list[float]) -> None:
    print(
        f"{label:<12} {count / elapsed:>9.0f} msg/s   "
        f"p50 {percentile(latencies, 0.50) * 1000:6.2f} ms   "
        f"p99 {percentile(latencies, 0.99) * 1000:6.2f} ms   "
        f"(mean {statistics.fmean(latencies) * 1000:.2f} ms, {count} messages)"
    )


def ingested(hub: EmulatedHub, device_id: str) -> int:
    partition = hub.events.partition_for(device_id)
    stored = hub.events.read(partition, 0, 10**9)
    return sum(e.device_id == device_id and e.message_source == "Telemetry" for e in stored)


def sdk_sender(hub: EmulatedHub, count: int) -> tuple[float, list[float]]:
    client = IoTHubDeviceClient.create_from_connection_string(
        hub.add_sas_device("bench-sdk"), server_verification_cert=hub.ca_pem
    )
    client.connect()
    latencies = []
    started = time.perf_counter()
    try:
        for number in range(count):
            message = Message(PAYLOAD, message_id=f"m-{number}", content_type="application/json")
            message.custom_properties["seq"] = str(number)
            sent = time.perf_counter()
            client.send_message(message)  # returns once the PUBACK arrived
            latencies.append(time.perf_counter() - sent)
        return time.perf_counter() - started, latencies
    finally:
        client.shutdown()


def paho_sender(hub: EmulatedHub, count: int, window: int) -> tuple[float, list[float]]:
    hub.add_sas_device("bench-paho")
    client = mqtt.Client(client_id="bench-paho", protocol=mqtt.MQTTv311, clean_session=False)
    client.username_pw_set(
        f"{hub.registry.host_name}/bench-paho/?api-version=2021-04-12",
        generate_token(hub.registry.device_resource("bench-paho"), hub.keys["bench-paho"]),
    )
    client.tls_set_context(ssl.create_default_context(cadata=hub.ca_pem))
    client.max_inflight_messages_set(window)
    slots = threading.Semaphore(window)
    # paho calls on_publish under its own lock, possibly before publish() returns the mid,
    # so sends and acks are logged separately and paired per mid (in order) at the end.
    sends: list[tuple[int, float]] = []
    acks: list[tuple[int, float]] = []
    done = threading.Event()

    def on_publish(_client: mqtt.Client, _userdata: object, mid: int) -> None:
        acks.append((mid, time.perf_counter()))
        slots.release()
        if len(acks) == count:
            done.set()

    client.on_publish = on_publish
    client.connect(hub.host, 8883)
    client.loop_start()
    started = time.perf_counter()
    try:
        for number in range(count):
            slots.acquire()
            stamp = time.perf_counter()
            info = client.publish(f"devices/bench-paho/messages/events/seq={number}", PAYLOAD, 1)
            sends.append((info.mid, stamp))
        if not done.wait(60):
            raise TimeoutError("PUBACKs missing after 60 s")
        return time.perf_counter() - started, _pair(sends, acks)
    finally:
        client.disconnect()
        client.loop_stop()


def _pair(sends: list[tuple[int, float]], acks: list[tuple[int, float]]) -> list[float]:
    pending: dict[int, deque[float]] = defaultdict(deque)
    for mid, stamp in sends:
        pending[mid].append(stamp)
    return [acked - pending[mid].popleft() for mid, acked in acks]


def serve_in_background() -> tuple[EmulatedHub, Callable[[], None]]:
    """Run an emulated hub on its own loop thread; returns it and a stop function."""
    loop = asyncio.new_event_loop()
    ready: list[EmulatedHub] = []
    started, stop = threading.Event(), asyncio.Event()

    async def serve() -> None:
        async with emulated_hub("benchhub") as hub:
            ready.append(hub)
            started.set()
            await stop.wait()

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    if not started.wait(10):
        raise RuntimeError("the emulated hub did not start")

    def shutdown() -> None:
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
        loop.close()

    return ready[0], shutdown


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--window", type=int, default=32, help="paho publishes in flight")
    args = parser.parse_args()
    hub, shutdown = serve_in_background()
    try:
        elapsed, latencies = sdk_sender(hub, args.messages)
        assert ingested(hub, "bench-sdk") == args.messages
        report("device SDK", args.messages, elapsed, latencies)
        elapsed, latencies = paho_sender(hub, args.messages, args.window)
        assert ingested(hub, "bench-paho") == args.messages
        report(f"paho w={args.window}", args.messages, elapsed, latencies)
    finally:
        shutdown()


if __name__ == "__main__":
    main()
