"""Free loopback addresses for emulators that must listen on IoT Hub's fixed port 8883.

The device SDK dials port 8883 whatever the connection string says, so emulators running
side by side each need their own address; every 127.x.y.z routes to the host on Linux.
"""

from __future__ import annotations

import random
import socket

from bridge_sim.errors import SimulatorError

__all__ = ["MQTT_PORT", "free_loopback_host", "privileged_port_or_none"]

MQTT_PORT = 8883


def _bindable(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def _random_loopback_host(chooser: random.SystemRandom) -> str:
    """A random 127.x.y.z, never 127.0.0.1 (which other services share)."""
    return f"127.{chooser.randint(0, 254)}.{chooser.randint(0, 255)}.{chooser.randint(2, 254)}"


def free_loopback_host(
    port: int = MQTT_PORT, attempts: int = 200, *, also: tuple[int, ...] = ()
) -> str:
    """A random 127.x.y.z (never 127.0.0.1) on which `port` (and `also`) are free now."""
    # Random addresses keep concurrent test runs from racing for the same one.
    chooser = random.SystemRandom()
    for _ in range(attempts):
        host = _random_loopback_host(chooser)
        if all(_bindable(host, each) for each in (port, *also)):
            return host
    raise SimulatorError(f"no free loopback address for port {port} after {attempts} tries")


def privileged_port_or_none(port: int, attempts: int = 20) -> int | None:
    """`port` (below 1024, such as IoT Hub's 443) when this process may listen on it, else
    None: that takes root or CAP_NET_BIND_SERVICE, or a lowered ip_unprivileged_port_start.
    A user without them still gets every other endpoint, just not this one."""
    chooser = random.SystemRandom()
    for _ in range(attempts):
        host = _random_loopback_host(chooser)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind((host, port))
            except PermissionError:
                return None
            except OSError:
                continue  # in use on that address: say nothing yet, try another
        return port
    return port  # busy everywhere tried: the caller's own search will say so
