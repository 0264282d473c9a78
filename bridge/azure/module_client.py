"""Closing an azure-iot-device client completely.

`shutdown()` stops paho's network thread but leaves the socket pair paho opened in
`loop_start()` for the garbage collector, which closes it only if the client's finalizer
runs before the sockets' own (an arbitrary order inside a reference cycle). A pooled relay
opens and closes thousands of clients over a migration window, so the pair is closed here,
once the thread has stopped, instead of leaking two descriptors each time.

A connection that drops leaves its pair behind the same way, and the next connect (the SDK
connects again by itself when a message is sent) makes a new pair over the old attributes:
`guard_socket_pair` closes the old one first.
"""

from __future__ import annotations

import asyncio
from typing import Any

from bridge.logging import get_logger

__all__ = ["close_module_client", "guard_socket_pair"]

_log = get_logger("azure.module_client")


async def close_module_client(device_id: str, client: Any, *, timeout: float) -> None:
    """Shut `client` down and release paho's socket pair; never raises for a dead link."""
    try:
        async with asyncio.timeout(timeout):
            await client.shutdown()
    except Exception as exc:  # a connection that will not close cleanly is gone anyway
        _log.debug("azure.relay_connection_closed_uncleanly", device_id=device_id, error=str(exc))
    paho = _paho_client(client)
    if paho is not None and getattr(paho, "_thread", None) is None:
        paho._reset_sockets(sockpair_only=True)  # noqa: SLF001 - see the module docstring


def guard_socket_pair(client: Any) -> None:
    """Have paho close its previous socket pair before `loop_start` makes a new one."""
    paho = _paho_client(client)
    if paho is None:
        return
    start = paho.loop_start

    def loop_start() -> Any:
        # Only when no network thread runs: loop_start would refuse anyway, and a running
        # thread still reads its pair. After a drop, the SDK clears `_thread` on its way out.
        if getattr(paho, "_thread", None) is None:
            paho._reset_sockets(sockpair_only=True)  # noqa: SLF001 - see the module docstring
        return start()

    paho.loop_start = loop_start


def _paho_client(client: Any) -> Any:
    """The paho client inside an azure-iot-device client's pipeline, if it has one."""
    pipeline = getattr(getattr(client, "_mqtt_pipeline", None), "_pipeline", None)
    stage = pipeline
    while stage is not None:
        transport = getattr(stage, "transport", None)
        if transport is not None and hasattr(transport, "_mqtt_client"):
            return transport._mqtt_client  # noqa: SLF001
        stage = getattr(stage, "next", None)
    return None
