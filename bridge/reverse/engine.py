"""The reverse path's engine: IoT Hub events in, AWS publishes and shadow writes out.

A batch of one partition is split into one lane per device; lanes run side by side and
each handles its device's events one after the other, so a device's order holds. The
batch is settled (and so checkpointed by the reader) only once every lane finished it:
AWS acknowledged each publish and accepted each shadow write, or the event was skipped or
dead-lettered. Whatever is not settled when the service stops is read again: at least once.

Only a device's own messages count (`iothub-connection-module-id` unset): the relay's
messages come from its module, and carrying them back would loop. Telemetry of devices in
REVERSE_SYNCING_STATES is carried; so is a ROLLED_BACK device's (sent while it was on
Azure: AWS's consumers would never see it otherwise) and a CUTOVER_PENDING one's (a wave's
job reaches its devices before the store records it for each, and a device can switch and
send within a second). A device still CUTTING_OVER holds its lane until the verdict.
Republishes carry `iot-bridge-origin: azure`, which the relay never carries back into
Azure, whatever the device's state. A FINALIZED device's messages that IoT Hub took before
the finalizing (in flight at that moment) are still carried, later ones are not; any other
state is skipped. Twin changes go back for REVERSE_SYNCING_STATES only (a rolled-back
device's twin is the mirror's again), held while CUTTING_OVER.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from bridge.azure.events import HubEvent
from bridge.core.machine import REVERSE_SYNCING_STATES, State
from bridge.core.milestones import finalized_at
from bridge.core.states import StateCache
from bridge.core.store import Store
from bridge.errors import Rejected
from bridge.logging import get_logger
from bridge.mapping.telemetry import FROM_AZURE, ORIGIN_PROPERTY
from bridge.metrics import Metrics
from bridge.reverse.telemetry import TopicTemplates, aws_topic
from bridge.reverse.twins import TwinChange, TwinSync, parse_twin_change

__all__ = ["EngineOptions", "Publisher", "ReverseEngine"]

_log = get_logger("reverse.engine")
_SOURCE = "reverse"  # dead letters' source column
_TELEMETRY = "Telemetry"
_TWINS = "twinChangeEvents"
_HOLD = frozenset({State.CUTTING_OVER})  # wait for the cutover's verdict
# Telemetry a device sent on Azure itself: CUTOVER_PENDING when its job reached it before
# the store recorded the job as sent (not held: a wave waiting to send its job has no
# verdict coming), ROLLED_BACK when it was on Azure before going back.
_CARRIED = REVERSE_SYNCING_STATES | {State.CUTOVER_PENDING, State.ROLLED_BACK}
_HOLD_POLL = 0.25
_FROM_AZURE = {ORIGIN_PROPERTY: FROM_AZURE}
_MAX_FINALIZED = 200_000  # finalizing moments remembered, at most
_T = TypeVar("_T")


class Publisher(Protocol):
    """Publishes to AWS at QoS 1; returns once AWS acknowledged."""

    async def publish(
        self,
        topic: str,
        payload: bytes,
        *,
        content_type: str | None = None,
        user_properties: Mapping[str, str] | None = None,
    ) -> None:
        """Raise `Rejected` when AWS refused the message."""
        ...


@dataclass(frozen=True)
class EngineOptions:
    """What the reverse path carries and how it paces itself."""

    telemetry: bool = True
    twins: bool = True
    in_flight: int = 100
    state_ttl: float = 1.0
    backoff: tuple[float, float] = (0.2, 10.0)  # first and largest retry delay, seconds


class _Stopped(Exception):  # noqa: N818 - control flow inside the engine only
    """The engine stopped while a lane waited; the batch stays unsettled."""


class ReverseEngine:
    """Settles batches of IoT Hub events by carrying cut-over devices' ones to AWS."""

    def __init__(
        self,
        store: Store,
        publisher: Publisher,
        twins: TwinSync,
        *,
        templates: TopicTemplates,
        metrics: Metrics,
        options: EngineOptions | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._publisher = publisher
        self._twins = twins
        self._templates = templates
        self._metrics = metrics
        self.options = options or EngineOptions()
        self._slots = asyncio.Semaphore(self.options.in_flight)
        self._states = StateCache(store, self.options.state_ttl, thing_types=True, clock=clock)
        self._finalized: dict[str, float] = {}  # device -> when it was finalized
        self._stopping = asyncio.Event()
        self.busy = 0  # batches being handled
        self.republished = 0

    def stop(self) -> None:
        """Settle no more: lanes waiting stop, and their batches are read again next time."""
        self._stopping.set()

    async def handle(self, _partition: str, events: Sequence[HubEvent]) -> bool:
        """Carry one batch; True once all of it is settled, False if stopped first."""
        if self._stopping.is_set():
            return False
        lanes: dict[str, list[HubEvent]] = {}
        for event in events:
            if event.device_id is not None:
                lanes.setdefault(event.device_id, []).append(event)
        self.busy += 1
        try:
            done = await asyncio.gather(*(self._lane(d, lane) for d, lane in lanes.items()))
        finally:
            self.busy -= 1
        return all(done)

    async def _lane(self, device_id: str, events: list[HubEvent]) -> bool:
        try:
            for event in events:
                await self._one(device_id, event)
        except _Stopped:
            return False
        return True

    async def _one(self, device_id: str, event: HubEvent) -> None:
        if event.source == _TELEMETRY:
            if event.module_id is not None or not self.options.telemetry:
                return  # the relay's (or another module's) message, not the device's
            state, thing_type = await self._settled_state(device_id)
            if state not in _CARRIED and state is not State.FINALIZED:
                # Sent by the device itself on Azure: it moved, possibly within the cache's
                # TTL of a state read before its job (a device can switch in half a second).
                # Look again before skipping.
                self._states.forget(device_id)
                state, thing_type = await self._settled_state(device_id)
            carried = state in _CARRIED or (
                state is State.FINALIZED and await self._before_finalizing(device_id, event)
            )
            if carried:
                await self._republish(device_id, event, thing_type)
            else:
                self._metrics.reverse_messages.labels(outcome="skipped").inc()
        elif event.source == _TWINS and event.module_id is None and self.options.twins:
            try:
                changes = parse_twin_change(
                    device_id, event.properties, event.body, event.generation_id
                )
            except (ValueError, UnicodeDecodeError) as exc:
                await self._dead_letter(event, "malformed", error=str(exc))
                return
            # The mirror's whole replaces (most twin changes by far) need no state read.
            changes = [change for change in changes if not change.from_mirror]
            if changes:
                state, _ = await self._settled_state(device_id)
                if state in REVERSE_SYNCING_STATES:
                    await self._twin_changes(device_id, event, changes)
        # Anything else (connection states, lifecycle, module twins) is nothing for AWS.

    async def _republish(self, device_id: str, event: HubEvent, thing_type: str | None) -> None:
        topic = aws_topic(device_id, event.properties, thing_type, self._templates)
        if topic is None:
            await self._dead_letter(event, "no_topic")
            self._metrics.reverse_messages.labels(outcome="dead_lettered").inc()
            return
        async with self._slots:
            try:
                await self._retrying(
                    "mqttPublish",
                    device_id,
                    lambda: self._publisher.publish(
                        topic,
                        event.body,
                        content_type=event.content_type,
                        # The relay reads these topics too: this marks it not to carry
                        # the message back into Azure, whatever state it cached.
                        user_properties=_FROM_AZURE,
                    ),
                )
            except Rejected as exc:
                await self._dead_letter(event, "refused", topic=topic, error=str(exc))
                self._metrics.reverse_messages.labels(outcome="dead_lettered").inc()
                return
        self.republished += 1
        self._metrics.reverse_messages.labels(outcome="republished").inc()
        self._metrics.reverse_lag.observe(max(0.0, time.time() - event.enqueued_at))

    async def _twin_changes(
        self, device_id: str, event: HubEvent, changes: Sequence[TwinChange]
    ) -> None:
        for change in changes:
            outcome: str
            try:
                outcome = await self._retrying(
                    "updateThingShadow", device_id, functools.partial(self._twins.apply, change)
                )
            except Rejected as exc:
                await self._dead_letter(event, "refused", section=change.section, error=str(exc))
                outcome = "dead_lettered"
            self._metrics.reverse_twin_writes.labels(section=change.section, outcome=outcome).inc()
            if outcome == "written":
                self._metrics.reverse_lag.observe(max(0.0, time.time() - event.enqueued_at))
                _log.info(
                    "reverse.shadow_written",
                    device_id=device_id,
                    section=change.section,
                    twin_version=change.version,
                )

    async def _retrying(
        self, operation: str, device_id: str, call: Callable[[], Awaitable[_T]]
    ) -> _T:
        """`call()` until it succeeds; `Rejected` goes through; a stop ends the waiting."""
        attempt = 0
        while True:
            attempt += 1
            try:
                return await call()
            except Rejected:
                raise
            except Exception as exc:
                self._metrics.retries.labels(side="aws", operation=operation).inc()
                _log.warning(
                    "reverse.retry_scheduled",
                    device_id=device_id,
                    operation=operation,
                    attempt=attempt,
                    error=f"{type(exc).__name__}: {exc}",
                )
                first, largest = self.options.backoff
                delay = random.uniform(0, min(largest, first * 2 ** min(attempt - 1, 16)))  # noqa: S311 - jitter
                await self._wait(delay)

    async def _before_finalizing(self, device_id: str, event: HubEvent) -> bool:
        """Whether IoT Hub took this message of a finalized device before the finalizing:
        such a message was in flight then and is still carried (AWS consumers get
        everything up to that moment, nothing after it)."""
        at = self._finalized.get(device_id)
        if at is None:
            if len(self._finalized) > _MAX_FINALIZED:  # a flood of names cannot grow it
                self._finalized.clear()
            at = self._finalized[device_id] = await finalized_at(self._store, device_id) or 0.0
        return 0 < event.enqueued_at < at

    async def _settled_state(self, device_id: str) -> tuple[State | None, str | None]:
        """The device's state once it is not waiting for a cutover verdict."""
        state, thing_type = await self._state(device_id)
        while state in _HOLD:
            await self._wait(max(self.options.state_ttl, _HOLD_POLL))
            state, thing_type = await self._state(device_id)
        return state, thing_type

    async def _wait(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._stopping.wait(), seconds)
        except TimeoutError:
            return
        raise _Stopped

    async def _state(self, device_id: str) -> tuple[State | None, str | None]:
        # Batched: every lookup that misses in one turn of the loop shares one store read.
        return await self._states.facts(device_id)

    async def _dead_letter(self, event: HubEvent, reason: str, **detail: object) -> None:
        payload: Mapping[str, object] = {
            "device_id": event.device_id,
            "source": event.source,
            "partition": event.partition,
            "sequence_number": event.sequence_number,
            "body_base64": base64.b64encode(event.body).decode(),
            **detail,
        }
        await self._store.dead_letter(_SOURCE, reason, payload)
        _log.warning(
            "reverse.dead_lettered", reason=reason, device_id=event.device_id, source=event.source
        )
