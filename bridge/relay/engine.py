"""The relay's engine: AWS deliveries in, one ordered lane per device, IoT Hub sends out.

A delivery is acknowledged to AWS only once it is settled: IoT Hub accepted it, or it was
dead-lettered (kept in the store with its reason), or its device is not relayed any more
(counted as skipped). Each device has at most one message in flight, so its order holds;
at most `in_flight` messages are taken and not settled, and when that many wait the engine
stops reading (the broker then stops sending: the source's Receive Maximum).
"""

from __future__ import annotations

import asyncio
import base64
import random
import time
from collections import deque
from collections.abc import AsyncIterable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from bridge.azure.budget import RateBudget
from bridge.azure.quotas import Operation
from bridge.core.machine import RELAYING_STATES, State
from bridge.core.milestones import cut_over_at
from bridge.core.ports import Delivery
from bridge.core.states import StateCache
from bridge.core.store import Store
from bridge.errors import Rejected
from bridge.logging import get_logger
from bridge.mapping.telemetry import FROM_AZURE, ORIGIN_PROPERTY, TopicRoute, resolve_device
from bridge.metrics import Metrics
from bridge.relay.message import MAX_MESSAGE_BYTES, RelayMessage, blocks, build_message

__all__ = ["DailyQuota", "RelayEngine", "Sender"]

_log = get_logger("relay.engine")
_SOURCE = "relay"  # dead letters' source column
# Refusals (module or key gone, credentials refused) in a row before a message is
# dead-lettered: the mirror may be re-creating the module meanwhile. Anything else (dropped
# connections, timeouts, 5xx: an outage) is retried until it passes or the relay stops.
_REFUSED_AFTER = 5
# Devices the mirror is still creating on Azure: their messages wait (unacknowledged).
_NOT_ON_AZURE_YET = frozenset({State.DISCOVERED, State.PROVISIONING})
_WAIT_POLL = 0.25  # seconds between state reads while a device is not on Azure yet
_MAX_MOMENTS = 200_000  # cutover moments remembered, at most


class _Stopped(Exception):  # noqa: N818 - control flow inside the engine only
    """The engine stopped while a lane waited; its message stays unacknowledged."""


class Sender(Protocol):
    """Sends one message as a device's relay module; returns once IoT Hub accepted it."""

    async def send(
        self,
        device_id: str,
        body: bytes,
        *,
        message_id: str,
        properties: Mapping[str, str],
        content_type: str | None = None,
        content_encoding: str | None = None,
    ) -> None:
        """Raise `Rejected` when retrying cannot help, anything else when it may."""
        ...


class DailyQuota:
    """IoT Hub's daily message quota, counted in 4 KB blocks per UTC day (in memory)."""

    def __init__(self, limit: int | None, metrics: Metrics, alert_ratio: float) -> None:
        self.limit = limit
        self._metrics = metrics
        self._alert_ratio = alert_ratio
        self._day = datetime.now(UTC).date()
        self.used = 0
        self._alerted = False

    def spend(self, size: int) -> None:
        today = datetime.now(UTC).date()
        if today != self._day:
            self._day, self.used, self._alerted = today, 0, False
        self.used += blocks(size)
        if self.limit:
            ratio = self.used / self.limit
            self._metrics.relay_quota_used.set(ratio)
            if ratio >= self._alert_ratio and not self._alerted:
                self._alerted = True
                _log.warning("relay.daily_quota_high", used=self.used, limit=self.limit)


@dataclass(frozen=True)
class EngineOptions:
    """How the engine paces and bounds itself."""

    in_flight: int = 100
    state_ttl: float = 1.0  # seconds a device's state is cached
    drain_seconds: float = 10.0
    backoff: tuple[float, float] = (0.2, 10.0)  # first and largest retry delay, seconds


class RelayEngine:
    """Relays deliveries to IoT Hub, per-device ordered, acknowledging only settled ones."""

    def __init__(
        self,
        routes: Sequence[TopicRoute],
        store: Store,
        sender: Sender,
        *,
        budget: RateBudget,
        metrics: Metrics,
        quota: DailyQuota,
        options: EngineOptions | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._routes = tuple(routes)
        self._store = store
        self._sender = sender
        self._budget = budget
        self._metrics = metrics
        self._sent = metrics.relay_messages.labels(outcome="sent")  # once, not per message
        self._quota = quota
        self.options = options or EngineOptions()
        self._clock = clock
        self._slots = asyncio.Semaphore(self.options.in_flight)
        self._lanes: dict[str, deque[Delivery]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._states = StateCache(store, self.options.state_ttl, clock=clock)
        self._moved_at: dict[str, float] = {}  # device -> when it was declared on Azure
        self._stopping = asyncio.Event()
        self._failure: BaseException | None = None  # what broke a lane (the store, a bug)
        self._failed = asyncio.Event()
        self.sent = 0

    @property
    def in_flight(self) -> int:
        """Messages taken and not settled yet."""
        return sum(len(lane) for lane in self._lanes.values())

    def stop(self) -> None:
        """Take no more deliveries; `run` drains the lanes and returns."""
        self._stopping.set()

    async def run(self, deliveries: AsyncIterable[Delivery]) -> None:
        """Relay until the deliveries end or `stop`; then drain, and cancel what is left."""
        reading = asyncio.create_task(self._read(deliveries), name="relay.read")
        stopping = asyncio.create_task(self._stopping.wait(), name="relay.stopping")
        failing = asyncio.create_task(self._failed.wait(), name="relay.failing")
        waits = {reading, stopping, failing}
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in waits:
                task.cancel()
            await asyncio.gather(*waits, return_exceptions=True)
            await self._drain()
        if reading.done() and not reading.cancelled() and reading.exception():
            raise reading.exception()  # type: ignore[misc]
        if self._failure is not None:
            # A lane that broke holds its messages unacknowledged forever: fail the service
            # (the daemon exits non-zero) rather than relay on with a silent hole.
            raise self._failure

    async def _read(self, deliveries: AsyncIterable[Delivery]) -> None:
        async for delivery in deliveries:
            # Back-pressure: no slot, no reading (and so no PUBACK, so the broker waits).
            await self._slots.acquire()
            if delivery.properties.get(ORIGIN_PROPERTY) == FROM_AZURE:
                # The reverse path's republish of a cut-over device's own message: already
                # on Azure. Skipped here, not by state, which the cache may know late.
                self._metrics.relay_messages.labels(outcome="skipped").inc()
                self._settled(delivery)
                continue
            device_id = resolve_device(self._routes, delivery.topic)
            if device_id is None:
                await self._dead_letter(delivery, None, "unresolved_device")
                self._settled(delivery)
                continue
            lane = self._lanes.get(device_id)
            if lane is not None:
                lane.append(delivery)
                continue
            self._lanes[device_id] = deque([delivery])
            task = asyncio.create_task(self._lane(device_id), name=f"relay.lane[{device_id}]")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _drain(self) -> None:
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=self.options.drain_seconds)
            if pending:
                # Unacknowledged: AWS sends them again to the next session.
                _log.warning("relay.drain_timed_out", lanes=len(pending), messages=self.in_flight)
                for task in pending:
                    task.cancel()
                await asyncio.gather(*pending, return_exceptions=True)

    async def _lane(self, device_id: str) -> None:
        lane = self._lanes[device_id]
        try:
            while lane:
                delivery = lane[0]
                await self._relay(device_id, delivery)
                lane.popleft()
                self._settled(delivery)
        except _Stopped:
            pass  # the rest of the lane stays unacknowledged: AWS sends it again
        except Exception as exc:
            _log.exception("relay.lane_failed", device_id=device_id)
            self._failure = exc
            self._failed.set()
        finally:
            self._lanes.pop(device_id, None)

    def _settled(self, delivery: Delivery) -> None:
        delivery.ack()
        self._slots.release()

    async def _relay(self, device_id: str, delivery: Delivery) -> None:
        state = await self._state(device_id)
        while state in _NOT_ON_AZURE_YET:
            # Not relayable yet, and not lost: wait for the mirror to create its module.
            try:
                await asyncio.wait_for(
                    self._stopping.wait(), max(self.options.state_ttl, _WAIT_POLL)
                )
            except TimeoutError:
                state = await self._state(device_id)
            else:
                raise _Stopped
        if state is None:
            await self._dead_letter(delivery, device_id, "unknown_device")
            return
        received = time.time() - (time.monotonic() - delivery.received_at)
        if state in RELAYING_STATES:
            self._moved_at.pop(device_id, None)  # rolled back: a new cutover, a new moment
        elif not await self._sent_before_it_moved(device_id, received):
            self._metrics.relay_messages.labels(outcome="skipped").inc()
            return
        message = build_message(device_id, delivery.topic, delivery.payload, received)
        if message.size > MAX_MESSAGE_BYTES:
            await self._dead_letter(delivery, device_id, "too_large", size=message.size)
            return
        if await self._send(message, delivery):
            self.sent += 1
            self._sent.inc()
            self._metrics.relay_lag.observe(time.monotonic() - delivery.received_at)
            self._quota.spend(message.size)

    async def _send(self, message: RelayMessage, delivery: Delivery) -> bool:
        """Send until IoT Hub accepts; dead-letter after `_REFUSED_AFTER` refusals in a row.

        Back-pressure does the rest during an outage: this lane waits, the others fill the
        in-flight bound, and the relay stops reading until IoT Hub is back.
        """
        await self._budget.acquire(Operation.D2C_SEND, blocks(message.size))
        attempt = refusals = 0
        while True:
            attempt += 1
            try:
                await self._sender.send(
                    message.device_id,
                    message.body,
                    message_id=message.message_id,
                    properties=message.properties,
                    content_type=message.content_type,
                    content_encoding=message.content_encoding,
                )
            except Exception as exc:
                error = str(exc) or type(exc).__name__
                refusals = refusals + 1 if isinstance(exc, Rejected) else 0
                self._metrics.retries.labels(side="azure", operation="d2cSend").inc()
                _log.warning(
                    "relay.send_failed",
                    device_id=message.device_id,
                    attempt=attempt,
                    refused=bool(refusals),
                    error=error,
                )
                if refusals >= _REFUSED_AFTER:
                    await self._dead_letter(delivery, message.device_id, "refused", error=error)
                    return False
                first, largest = self.options.backoff
                delay = min(largest, first * 2 ** min(attempt - 1, 16))
                await asyncio.sleep(random.uniform(0, delay))  # noqa: S311 - full jitter
            else:
                return True

    async def _sent_before_it_moved(self, device_id: str, received: float) -> bool:
        """Whether AWS delivered this message before the device was declared on Azure.

        A device publishes on AWS until it switches: what it sent then, still on its way
        through the relay when the verdict came, is on neither cloud unless relayed.
        """
        moved = self._moved_at.get(device_id)
        if moved is None:
            moved = await cut_over_at(self._store, device_id) or 0.0
            if len(self._moved_at) >= _MAX_MOMENTS:
                self._moved_at.clear()
            self._moved_at[device_id] = moved
        return received < moved

    async def _state(self, device_id: str) -> State | None:
        return await self._states.get(device_id)

    async def _dead_letter(
        self, delivery: Delivery, device_id: str | None, reason: str, **detail: object
    ) -> None:
        await self._store.dead_letter(
            _SOURCE,
            reason,
            {
                "topic": delivery.topic,
                "device_id": device_id,
                "payload_base64": base64.b64encode(delivery.payload).decode(),
                **detail,
            },
        )
        self._metrics.relay_messages.labels(outcome="dead_lettered").inc()
        self._metrics.relay_dead_letters.labels(reason=reason).inc()
        _log.warning(
            "relay.dead_lettered", reason=reason, topic=delivery.topic, device_id=device_id
        )
