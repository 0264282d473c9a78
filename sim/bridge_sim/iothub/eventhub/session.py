"""Per-session and per-link state the connection keeps between frames."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from bridge_sim.iothub.eventhub.log import EventLog
from bridge_sim.iothub.eventhub.ownership import Claim

__all__ = ["EventSenderLink", "RequestLink", "ResponseLink", "Session"]

# Our incoming window: large enough that a client never runs it down in practice.
SESSION_WINDOW = 2**31 - 1


@dataclass
class RequestLink:
    """A client's sender link to `$cbs` or `$management`; we receive requests on it."""

    handle: int
    node: str
    pending: bytearray = field(default_factory=bytearray)
    pending_delivery_id: int | None = None


@dataclass
class ResponseLink:
    """A client's receiver link from `$cbs` or `$management`; replies go out on it."""

    handle: int
    node: str
    delivery_count: int = 0


@dataclass
class EventSenderLink:
    """A client's receiver link on a partition; a pump task sends events as credit allows."""

    handle: int
    consumer_group: str
    partition: int
    next_sequence: int
    delivery_count: int = 0
    credit: int = 0
    runtime_metrics: bool = False
    # The receiver asked to have its remaining credit used up now or given back.
    drain: bool = False
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    pump: asyncio.Task[None] | None = None
    claim: Claim | None = None
    # The entity read: the hub's built-in endpoint when None, else a custom Event Hub.
    log: EventLog | None = None

    def on_flow(
        self, delivery_count: int | None, link_credit: int | None, *, drain: bool = False
    ) -> None:
        """Apply the receiver's credit: what it allows beyond what it has already counted."""
        if link_credit is None:
            return
        self.drain = drain
        receiver_count = self.delivery_count if delivery_count is None else delivery_count
        self.credit = max(0, receiver_count + link_credit - self.delivery_count)
        self.wakeup.set()


Link = RequestLink | ResponseLink | EventSenderLink


@dataclass
class Session:
    """One session: its channel, transfer counters and links by the client's handle."""

    channel: int
    next_incoming_id: int = 0
    next_transfer_id: int = 0
    next_delivery_id: int = 0
    remote_incoming_window: int = 0
    links: dict[int, Link] = field(default_factory=dict)

    def on_flow(self, next_incoming_id: int | None, incoming_window: int) -> None:
        """Recompute how many more transfer frames the client will take."""
        base = self.next_transfer_id if next_incoming_id is None else next_incoming_id
        self.remote_incoming_window = base + incoming_window - self.next_transfer_id
        for link in self.links.values():
            if isinstance(link, EventSenderLink):
                link.wakeup.set()

    def response_link(self, node: str) -> ResponseLink | None:
        """The link replies to requests on `node` go out on."""
        for link in self.links.values():
            if isinstance(link, ResponseLink) and link.node == node:
                return link
        return None

    def event_links(self) -> list[EventSenderLink]:
        """The partition links, whose pumps must stop with the session."""
        return [link for link in self.links.values() if isinstance(link, EventSenderLink)]
