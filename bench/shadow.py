"""The AWS stand-in's Device Shadow service against a fleet: updates/s and latency.

`--devices` things are registered as the simulated fleet registers them (each its own
certificate and per-thing policy) and connected over mutual TLS, spread over `--workers`
child processes (aiomqtt, one connection per device). Each device publishes classic-shadow
updates (`$aws/things/<thing>/shadow/update`, a reported temperature and a clientToken) and
times each until its `update/accepted` with that token comes back.

Phases, each `--seconds` long, over the same connections:

1. baseline, echo: the same devices publish on their telemetry topic `dt/<thing>` and a
   minimal responder on the broker's plain listener (one aiomqtt client, as the stand-in's
   glue is, its publishes pipelined) answers each on the device's `$aws/things/<thing>/echo`:
   the broker and one Python MQTT client, without the shadow service. Every device keeps
   one request in flight.
2. shadow, paced: every device sends one update per `--period` seconds (the load a fleet
   reporting now and then puts on it), for latency at that load.
3. shadow, saturated: every device keeps one update in flight (latency there is mostly
   queueing: a thousand requests wait their turn).

Prints, per phase: requests answered per second and latency p50/p99 (publish to answer,
same clock). Run it before and after a change to the stand-in and compare.

    .venv/bin/python bench/shadow.py --devices 1000
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import ssl
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bridge.logging import configure_logging

configure_logging("WARNING")

import aiomqtt  # noqa: E402 - after logging is quiet
from _mirror_rig import percentile  # noqa: E402 - next to this file

from bridge_sim.aws.standin import AwsStandIn  # noqa: E402
from bridge_sim.fleet import Fleet  # noqa: E402


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=4, help="device processes")
    parser.add_argument("--seconds", type=float, default=15.0, help="length of each phase")
    parser.add_argument("--period", type=float, default=10.0, help="paced: s between updates")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args()


# -- the device side (a child process) ---------------------------------------------------


class _Device:
    def __init__(self, name: str, folder: Path, host: str, port: int, ca: str) -> None:
        context = ssl.create_default_context(cafile=ca)
        context.load_cert_chain(folder / "cert.pem", folder / "key.pem")
        self.name = name
        self.client = aiomqtt.Client(host, port, identifier=name, tls_context=context)
        self.waiting: dict[str, asyncio.Future[float]] = {}

    async def run(self, ready: asyncio.Event) -> None:
        async with self.client as client:
            base = f"$aws/things/{self.name}"
            await client.subscribe(f"{base}/shadow/update/accepted", qos=1)
            await client.subscribe(f"{base}/echo", qos=1)
            ready.set()
            async for message in client.messages:
                token = json.loads(message.payload).get("clientToken")  # type: ignore[arg-type]
                if (future := self.waiting.pop(token, None)) and not future.done():
                    future.set_result(time.monotonic())

    async def request(self, kind: str) -> float:
        token = f"{random.getrandbits(64):x}"
        body: dict[str, Any] = {"clientToken": token}
        if kind == "shadow":
            topic = f"$aws/things/{self.name}/shadow/update"
            body["state"] = {"reported": {"temperature": round(random.uniform(18, 26), 2)}}
        else:
            topic = f"dt/{self.name}"
        future = self.waiting[token] = asyncio.get_running_loop().create_future()
        sent = time.monotonic()
        await self.client.publish(topic, json.dumps(body), qos=1)
        return await asyncio.wait_for(future, 30) - sent


async def _device_loop(device: _Device, kind: str, until: float, period: float) -> list[float]:
    latencies = []
    if period:
        await asyncio.sleep(random.uniform(0, period))
    while time.monotonic() < until:
        started = time.monotonic()
        with contextlib.suppress(TimeoutError):
            latencies.append(await device.request(kind))
        if period:
            await asyncio.sleep(max(0.0, period - (time.monotonic() - started)))
    return latencies


async def _worker() -> None:
    lines = asyncio.StreamReader()
    loop = asyncio.get_running_loop()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(lines), sys.stdin)
    config = json.loads(await lines.readline())
    devices = [
        _Device(n, Path(config["workdir"]) / n, config["host"], config["port"], config["ca"])
        for n in config["names"]
    ]
    tasks = []
    for device in devices:  # one at a time: the broker rate-limits connects per second
        ready = asyncio.Event()
        tasks.append(asyncio.create_task(device.run(ready)))
        await ready.wait()
    print(json.dumps({"ready": True}), flush=True)
    while line := await lines.readline():
        phase = json.loads(line)
        until = time.monotonic() + phase["seconds"]
        runs = [_device_loop(d, phase["kind"], until, phase["period"]) for d in devices]
        latencies = [x for run in await asyncio.gather(*runs) for x in run]
        print(json.dumps({"latencies": latencies}), flush=True)
    for task in tasks:
        task.cancel()


# -- the bench (the parent) --------------------------------------------------------------


async def _echo(host: str, port: int) -> None:
    """Answers every device's telemetry on its echo topic: the broker and a Python client.

    Its publishes are pipelined (up to 1,000 unacknowledged), so it shows what the broker
    and one client carry, the ceiling for the stand-in's own glue client.
    """
    async with aiomqtt.Client(host, port, identifier="bench-echo", max_inflight_messages=1000) as c:
        await c.subscribe("dt/+", qos=1)
        sends: set[asyncio.Task[None]] = set()
        async for message in c.messages:
            name = message.topic.value.split("/")[1]
            send = asyncio.create_task(
                c.publish(f"$aws/things/{name}/echo", message.payload, qos=1)
            )
            sends.add(send)
            send.add_done_callback(sends.discard)


async def _phase(workers: list[Any], kind: str, seconds: float, period: float) -> list[float]:
    command = json.dumps({"kind": kind, "seconds": seconds, "period": period}) + "\n"
    for worker in workers:
        worker.stdin.write(command.encode())
    answers = [json.loads(await w.stdout.readline()) for w in workers]
    return [x for answer in answers for x in answer["latencies"]]


def _line(title: str, latencies: list[float], seconds: float) -> str:
    return (
        f"{title}: {len(latencies) / seconds:.0f} answered/s; latency p50 "
        f"{percentile(latencies, 0.5) * 1000:.1f} ms, "
        f"p99 {percentile(latencies, 0.99) * 1000:.1f} ms"
    )


async def main(args: argparse.Namespace) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="bench-shadow-"))
    async with AwsStandIn(workdir=workdir / "aws", aws_quotas=False) as aws:
        env = aws.env()
        fleet = Fleet(env, workdir / "fleet", devices=args.devices, prefix="sh", processes=1)
        started = time.monotonic()
        await asyncio.to_thread(fleet.register)
        print(f"{args.devices} things registered in {time.monotonic() - started:.0f} s", flush=True)
        assert aws.broker is not None
        echo = asyncio.create_task(_echo(aws.host, aws.broker.plain_port))
        names = fleet.names
        workers = []
        for index in range(args.workers):
            worker = await asyncio.create_subprocess_exec(
                sys.executable, __file__, "--worker",
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, limit=1 << 26,
            )  # fmt: skip
            config = {
                "names": names[index :: args.workers],
                "workdir": str(workdir / "fleet"),
                "host": aws.host,
                "port": aws.broker.tls_port,
                "ca": env["AWS_IOT_ROOT_CA"],
            }
            worker.stdin.write(json.dumps(config).encode() + b"\n")  # type: ignore[union-attr]
            workers.append(worker)
        for worker in workers:
            await worker.stdout.readline()  # type: ignore[union-attr]
        print(f"{args.devices} devices connected over mutual TLS", flush=True)
        try:
            seconds = args.seconds
            echoed = await _phase(workers, "echo", seconds, 0)
            print(_line("baseline, echo (broker + one client)", echoed, seconds), flush=True)
            paced = await _phase(workers, "shadow", seconds, args.period)
            offered = args.devices / args.period
            print(_line(f"shadow updates, paced at {offered:.0f}/s offered", paced, seconds))
            await aws.glue.drain()  # type: ignore[union-attr] - what the last phase left
            saturated = await _phase(workers, "shadow", seconds, 0)
            print(_line("shadow updates, saturated", saturated, seconds), flush=True)
        finally:
            echo.cancel()
            for worker in workers:
                worker.stdin.close()  # type: ignore[union-attr]
                with contextlib.suppress(ProcessLookupError):
                    worker.kill()
                await worker.wait()


if __name__ == "__main__":
    arguments = _arguments()
    asyncio.run(_worker() if arguments.worker else main(arguments))
