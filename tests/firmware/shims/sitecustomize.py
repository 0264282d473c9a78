"""Loaded by every corpus program the tests run: name resolution for the emulated hub.

`FIRMWARE_TEST_HOSTS=name=address[,name=address]` makes `name` resolve to `address`, as a
real hub's DNS name would; the program itself is not changed for the test.
"""

import os
import socket

_HOSTS = dict(
    pair.split("=", 1) for pair in os.environ.get("FIRMWARE_TEST_HOSTS", "").split(",") if pair
)
_getaddrinfo = socket.getaddrinfo


def _resolve(host, *args, **kwargs):
    if isinstance(host, bytes):
        host = host.decode()
    return _getaddrinfo(_HOSTS.get(host, host), *args, **kwargs)


if _HOSTS:
    socket.getaddrinfo = _resolve
