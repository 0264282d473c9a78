"""Ports for servers the stand-ins and tests start, outside the kernel's ephemeral range.

Binding port 0 hands out a port from the ephemeral range, the same range outgoing
connections take their local ports from. A server that gives its port up and binds it
again (a broker restarted, a daemon killed and started again) can then find it taken by
some client's connection meanwhile: on a busy machine, one run in many failed so with
"address already in use". Below the range no connection takes a port on its own.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

__all__ = ["free_port"]

_LOWEST = 10_000
_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_DEFAULT_EPHEMERAL = 32_768  # Linux's default lower bound


def _ephemeral_floor() -> int:
    try:
        return int(_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return _DEFAULT_EPHEMERAL


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on now, chosen at random below the ephemeral range."""
    floor = _ephemeral_floor()
    for _ in range(200):
        port = random.randrange(_LOWEST, max(floor, _LOWEST + 1000))  # noqa: S311 - not secret
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind((host, port))
            except OSError:
                continue
            return port
    # A crowded machine: let the kernel choose, as before.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        chosen: int = probe.getsockname()[1]
        return chosen
