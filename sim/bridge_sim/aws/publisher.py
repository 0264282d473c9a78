"""The stand-in's own MQTT client on the broker's plain listener.

Glue code publishes from moto's server threads and from asyncio; `publish()` is
thread-safe, never blocks, and keeps call order. Messages wait in memory while the broker
is down and go out, in order, once it is back.
"""

from __future__ import annotations

import asyncio
import random
from collections import deque
from collections.abc import Awaitable, Callable, Iterable

import aiomqtt

from bridge.logging import get_logger

__all__ = ["GlueClient"]

Handler = Callable[[str, bytes], Awaitable[None]]
log = get_logger("sim.aws.glue")
_BACKOFF_MAX_S = 2.0
_WINDOW = 500  # publishes awaiting their PUBACK (the client allows 1,000 in flight)


class GlueClient:
    """Publishes glue messages and feeds device requests to their handlers."""

    def __init__(self, *, host: str, port: int, identifier: str = "aws-standin-glue") -> None:
        self._host = host
        self._port = port
        self._identifier = identifier
        self._outbox: deque[tuple[str, bytes, int, bool]] = deque()
        self._wakeup = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._routes: list[tuple[str, Handler]] = []
        self._connected = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._stopping = False

    def route(self, filters: Iterable[str], handler: Handler) -> None:
        """Send messages matching any of `filters` to `handler`, one at a time, in order."""
        self._routes.extend((f, handler) for f in filters)

    def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> None:
        """Queue a message (QoS 1 unless told); callable from any thread."""
        loop = self._loop
        if loop is None:
            raise RuntimeError("GlueClient.run() has not started")
        loop.call_soon_threadsafe(self._enqueue, topic, payload, qos, retain)

    def _enqueue(self, topic: str, payload: bytes, qos: int, retain: bool) -> None:
        self._outbox.append((topic, payload, qos, retain))
        self._idle.clear()
        self._wakeup.set()

    def bind_loop(self) -> None:
        """Remember the running loop so other threads can publish."""
        self._loop = asyncio.get_running_loop()

    async def wait_connected(self, timeout: float = 10) -> None:
        """Wait until the client has connected and subscribed."""
        await asyncio.wait_for(self._connected.wait(), timeout)

    def stop(self) -> None:
        """Say the next cancellation is for real (call before cancelling `run`)."""
        self._stopping = True

    async def run(self) -> None:
        """Connect, subscribe, publish and dispatch until cancelled; reconnect on failure."""
        self.bind_loop()
        attempt = 0
        while True:
            lost: str | None = None
            try:
                await self._session()
            except* aiomqtt.MqttError as errors:
                lost = str(errors.exceptions[0])
            # A cancel that lands while aiomqtt disconnects can surface as a lost
            # connection instead of CancelledError; honour it rather than reconnect. The
            # flag, not task.cancelling(): a broker restart leaves a cancel request counted
            # by the TaskGroup inside aiomqtt's session that was never meant as a stop.
            if self._stopping:
                raise asyncio.CancelledError
            if self._connected.is_set():
                attempt = 0  # it had connected: start the backoff again from the bottom
            self._connected.clear()
            attempt += 1
            delay = min(_BACKOFF_MAX_S, 0.05 * 2**attempt) * random.uniform(0.5, 1)  # noqa: S311
            log.warning("sim.aws.glue_disconnected", error=lost, retry_in=delay)
            await asyncio.sleep(delay)

    async def _session(self) -> None:
        """One connection: subscribe, then publish and dispatch until it fails."""
        # A persistent session keeps device requests queued across broker restarts.
        async with aiomqtt.Client(
            self._host,
            self._port,
            identifier=self._identifier,
            clean_session=False,
            max_inflight_messages=1000,
        ) as client:
            # Up to _WINDOW publishes await their PUBACK by design; aiomqtt warns above 10.
            client.pending_calls_threshold = _WINDOW
            for topic_filter, _ in self._routes:
                await client.subscribe(topic_filter, qos=1)
            self._connected.set()
            async with asyncio.TaskGroup() as group:
                group.create_task(self._send(client), name="sim.aws.glue.send")
                group.create_task(self._receive(client), name="sim.aws.glue.receive")

    async def _send(self, client: aiomqtt.Client) -> None:
        """Publish the outbox in order, up to `_WINDOW` unacknowledged at once.

        One publish at a time (awaiting each PUBACK) held the stand-in's shadow service
        to about 200 updates/s at 1,000 devices: each update is two or three publishes, each
        a round trip through the broker. One connection delivers in order, so pipelining
        keeps the order; a message leaves the outbox only once the broker acknowledged it
        and everything before it, so a lost connection sends the rest again (at least once).
        """
        inflight: deque[asyncio.Task[None]] = deque()
        try:
            while True:
                while len(inflight) < min(_WINDOW, len(self._outbox)):
                    topic, payload, qos, retain = self._outbox[len(inflight)]
                    inflight.append(
                        asyncio.create_task(client.publish(topic, payload, qos=qos, retain=retain))
                    )
                if inflight:
                    await inflight[0]
                    inflight.popleft()
                    self._outbox.popleft()  # only once the broker has it
                    continue
                self._idle.set()
                self._wakeup.clear()
                await self._wakeup.wait()
        finally:
            for task in inflight:
                task.cancel()

    async def _receive(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            topic = message.topic.value
            payload = message.payload if isinstance(message.payload, bytes) else b""
            for topic_filter, handler in self._routes:
                if message.topic.matches(topic_filter):
                    try:
                        await handler(topic, payload)
                    except Exception:
                        log.exception("sim.aws.glue_handler_failed", topic=topic)
                    break

    async def drain(self) -> None:
        """Wait until every queued message has been handed to the broker."""
        await self._idle.wait()
