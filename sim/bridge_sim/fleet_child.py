"""A child process of the simulated fleet: one `Shard` of its devices.

Why processes: azure-iot-device connects every client of a process through one shared
pipeline thread (each TLS handshake waits for the one before), and a thousand awsiotsdk and
paho clients in one interpreter fight over one GIL; at 1,000 devices in one process no
agent reached Azure before its deadline. A child runs a slice of the fleet instead.

The protocol is JSON lines. The parent writes the shard's settings as the first line on
stdin, then commands (`telemetry-start`, `telemetry-stop`, `stop`); the child answers on
its own copy of stdout (`started`, a line per reading `r`, device `state`s,
`telemetry-stopped`, `stopped`, or `error` and a non-zero exit). Anything else the
libraries print goes to stderr, which the parent keeps in a log file. End of file on stdin
means the parent is gone: the child stops its agents and exits, so it never outlives the
fleet.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from typing import IO, Any

from bridge_sim.fleet_shard import Reading, Shard

__all__ = ["main"]


class _Channel:
    """The protocol's output: a private copy of fd 1; fd 1 itself then points at stderr."""

    def __init__(self) -> None:
        self._out: IO[str] = os.fdopen(os.dup(1), "w", buffering=1)
        os.dup2(2, 1)
        sys.stdout = sys.stderr

    def emit(self, kind: str, **fields: Any) -> None:
        self._out.write(json.dumps({"e": kind, **fields}, separators=(",", ":")) + "\n")

    def report(self, kind: str, device: str, data: Any) -> None:
        if kind == "reading":
            assert isinstance(data, Reading)
            self.emit("r", d=device, s=data.seq, t=data.at, c=data.cloud)
        else:
            self.emit(kind, d=device, v=data)


async def _commands() -> asyncio.StreamReader:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    return reader


async def _run(channel: _Channel) -> int:
    reader = await _commands()
    config = json.loads(await reader.readline())
    shard = Shard(
        config["env"],
        Path(config["workdir"]),
        config["names"],
        config["faults"],
        interval=config["interval"],
        shadow_interval=config["shadow_interval"],
        report=channel.report,
    )
    try:
        await shard.start()
    except Exception as exc:
        channel.emit("error", message=f"{type(exc).__name__}: {exc}")
        await shard.stop()
        return 1
    channel.emit("started")
    while line := await reader.readline():  # b"" at end of file: the parent is gone
        command = json.loads(line)["cmd"]
        if command == "telemetry-start":
            shard.start_telemetry()
        elif command == "telemetry-stop":
            await shard.stop_telemetry()
            channel.emit("telemetry-stopped")
        elif command == "stop":
            break
    await shard.stop()
    shard.report_states()
    channel.emit("stopped")
    return 0


def main() -> None:
    """Run one shard until the parent says stop or goes away."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    channel = _Channel()
    sys.exit(asyncio.run(_run(channel)))


if __name__ == "__main__":
    main()
