"""Messages received from AWS IoT that wait for the engine, and the PUBACKs that let more in.

awscrt calls back on its own threads, which must neither block nor drop a QoS 1 message, so
the inbox never refuses one. The bound is applied upstream instead: a broker sends QoS 1
messages only while fewer than the client's Receive Maximum wait for their PUBACK, and
`AckValve` paces the PUBACKs to the engine, for brokers that send more than that.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from bridge.logging import get_logger

__all__ = ["AckValve", "Arrival", "Inbox"]

log = get_logger("aws.source")


@dataclass(frozen=True, slots=True)
class Arrival:
    """One PUBLISH as it came off the wire.

    `handle` is awscrt's PUBACK control handle (None for QoS 0, which nobody acknowledges);
    `connection` counts the connections of the client, so a reconnect can tell which
    messages the broker is about to send again.
    """

    topic: str
    payload: bytes
    handle: object | None
    received_at: float
    connection: int
    properties: dict[str, str] = field(default_factory=dict)  # MQTT 5 user properties


class Inbox:
    """A FIFO of arrivals with one reader; `get` returns None once closed."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._items: deque[Arrival] = deque()
        self._ready = asyncio.Event()
        self._closed = False
        self._over = False

    def __len__(self) -> int:
        return len(self._items)

    def put(self, arrival: Arrival) -> None:
        """Queue an arrival; never refuses one (dropping an unacknowledged message loses it)."""
        if self._closed:
            return  # not acknowledged: the broker sends it again to the next session
        self._items.append(arrival)
        self._ready.set()
        # Twice the limit is more than AckValve lets in: QoS 0 (which nobody acknowledges),
        # leftovers of a lost session, or a resend of everything the broker had in flight.
        # Say so once per episode rather than drop them.
        if len(self._items) > 2 * self.limit and not self._over:
            self._over = True
            log.warning("aws.inbox_over_limit", pending=len(self._items), limit=self.limit)
        elif self._over and len(self._items) <= self.limit:
            self._over = False

    def forget_resent(self, connection: int) -> int:
        """Drop QoS 1 arrivals of connections before `connection`; return how many.

        Called when a connection resumed the session: the broker sends every message it has
        not had a PUBACK for again, so these copies would only be duplicates (and their
        acknowledgement handles died with their connection).
        """
        kept = deque(a for a in self._items if a.handle is None or a.connection >= connection)
        dropped = len(self._items) - len(kept)
        self._items = kept
        return dropped

    async def get(self) -> Arrival | None:
        """The oldest arrival, waiting for one; None once the inbox is closed."""
        while not self._closed:
            if self._items:
                return self._items.popleft()
            self._ready.clear()
            await self._ready.wait()
        return None

    def close(self) -> None:
        """Wake the reader and end it; what is left stays unacknowledged for the broker."""
        self._closed = True
        self._items.clear()
        self._ready.set()


class AckValve:
    """Sends PUBACKs at the pace the engine takes messages while any are waiting.

    A broker sends QoS 1 messages only while fewer than the client's Receive Maximum wait
    for their PUBACK, so a broker that honours it never lets the inbox hold more than
    that. mosquitto 2.0.11 does not: each PUBACK lets a whole Receive Maximum of new
    messages through (measured: receive maximum 5, one PUBACK at a time, 5 more messages
    each time). Holding back the PUBACKs of stored messages costs nothing but a duplicate
    after a crash, and it holds back any broker: while the inbox is not empty, one PUBACK
    goes out per message taken, and none while it is full, so the inbox stays under
    limit + Receive Maximum. Once it is empty every held PUBACK goes: a broker would
    otherwise wait for them while the engine waits for messages.

    One held PUBACK at a time: the next waits until a message arrived after it. On a busy
    machine the engine can take several messages before the broker's answer to the first
    PUBACK lands, and each PUBACK let go meanwhile would let in another Receive Maximum
    (measured: 13 waiting with limit 5 and Receive Maximum 5).
    """

    def __init__(self, inbox: Inbox, send: Callable[[object], None]) -> None:
        self._inbox = inbox
        self._send = send
        self._held: deque[object] = deque()
        self._let_go = False  # a held PUBACK went and no message arrived since

    @property
    def held(self) -> int:
        """PUBACKs waiting for the engine to take more messages."""
        return len(self._held)

    def ack(self, handle: object) -> None:
        """Acknowledge at once when nothing waits for the engine, else at its pace.

        Call on the event loop.
        """
        self._held.append(handle)
        if not len(self._inbox):
            self.open()

    def arrived(self) -> None:
        """A message arrived: the broker answered whatever PUBACK went before it."""
        self._let_go = False

    def taken(self) -> None:
        """The engine took a message: one held PUBACK may go, all when nothing is left."""
        if not len(self._inbox):
            self.open()
        elif self._held and len(self._inbox) < self._inbox.limit and not self._let_go:
            self._let_go = True
            self._send(self._held.popleft())

    def open(self) -> None:
        """Send every held PUBACK (the inbox is empty, or the source is closing)."""
        self._let_go = False
        while self._held:
            self._send(self._held.popleft())

    def forget(self) -> None:
        """Drop held PUBACKs of a lost connection (awscrt voids their handles anyway)."""
        self._held.clear()
        self._let_go = False
