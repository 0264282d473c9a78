"""Link-level frames: ATTACH, FLOW, TRANSFER, DISPOSITION and DETACH, and the two nodes."""

from __future__ import annotations

import asyncio
import re
from typing import TYPE_CHECKING, Any

from bridge.logging import get_logger
from bridge_sim.iothub.eventhub import codec, nodes
from bridge_sim.iothub.eventhub.addressing import (
    SELECTOR_FILTER,
    parse_address,
    starting_sequence,
)
from bridge_sim.iothub.eventhub.delivery import pump_events, send_flow, send_message
from bridge_sim.iothub.eventhub.errors import LinkRefused, ProtocolError
from bridge_sim.iothub.eventhub.ownership import LINK_STOLEN, Claim
from bridge_sim.iothub.eventhub.session import (
    EventSenderLink,
    RequestLink,
    ResponseLink,
    Session,
)

if TYPE_CHECKING:
    from bridge_sim.iothub.eventhub.connection import AmqpConnection

__all__ = ["LinkHandler"]

_log = get_logger("iothub.eventhub")
_REQUEST_CREDIT = 1000
_NODES = (nodes.CBS_NODE, nodes.MANAGEMENT_NODE)
# Asked for by `track_last_enqueued_event_properties=True`: last-enqueued figures per delivery.
RUNTIME_METRIC = b"com.microsoft:enable-receiver-runtime-metric"
OWNER_LEVEL = b"com.microsoft:epoch"


def _owner_level(properties: Any) -> int | None:
    level = properties.get(OWNER_LEVEL) if isinstance(properties, dict) else None
    return int(level) if level is not None else None


class LinkHandler:
    """Handles the link frames of one connection's sessions."""

    def __init__(self, connection: AmqpConnection) -> None:
        self.connection = connection
        self.context = connection.context

    async def dispatch(self, code: int, session: Session, fields: list[Any]) -> None:
        """Route one link-level performative."""
        if code == codec.Code.ATTACH:
            self._on_attach(session, codec.pad(fields, 14))
        elif code == codec.Code.FLOW:
            self._on_flow(session, codec.pad(fields, 11))
        elif code == codec.Code.TRANSFER:
            await self._on_transfer(session, fields)
        elif code == codec.Code.DETACH:
            self._on_detach(session, codec.pad(fields, 3))
        # DISPOSITION: we send settled and ignore the client's outcomes.

    def stop_session(self, session: Session) -> None:
        """Stop every pump of a session that ends or whose connection goes."""
        for link in session.event_links():
            self._stop_receiver(link)
        session.links.clear()

    def _stop_receiver(self, link: EventSenderLink) -> None:
        if link.pump is not None:
            link.pump.cancel()
        if link.claim is not None:
            self.context.owners.release(link.claim)

    def _on_attach(self, session: Session, fields: list[Any]) -> None:
        handle, client_sends = int(fields[1]), not fields[2]
        source = codec.pad(fields[5] or [], 11)
        target = codec.pad(fields[6] or [], 7)
        source_address, target_address = codec.text(source[0]), codec.text(target[0])
        if handle in session.links:
            raise ProtocolError(b"amqp:session:handle-in-use", f"handle {handle} in use")
        if client_sends:
            if target_address not in _NODES:
                self._refuse(session, fields, LinkRefused(f"No node {target_address!r}"))
                return
            session.links[handle] = RequestLink(handle=handle, node=str(target_address))
            self._reply_attach(session, fields, we_send=False)
            send_flow(self.connection, session, handle, int(fields[9] or 0), _REQUEST_CREDIT)
            return
        if source_address in _NODES:
            session.links[handle] = ResponseLink(handle=handle, node=str(source_address))
            self._reply_attach(session, fields, we_send=True)
            return
        self._attach_partition(session, fields, str(source_address), source[7])

    def _attach_partition(
        self, session: Session, fields: list[Any], address: str, filters: Any
    ) -> None:
        context = self.context
        selector = None
        if isinstance(filters, dict):
            selector = codec.text(filters.get(SELECTOR_FILTER))
        if not self.connection.authorized:
            unauthorized = LinkRefused("Unauthorized: no valid token.", b"amqp:unauthorized-access")
            self._refuse(session, fields, unauthorized)
            return
        # The entity is the address's first segment: the hub's own, or a custom Event Hub.
        entity = context.entity(re.sub(r"^amqps?://[^/]+/", "", address).strip("/").split("/")[0])
        name, log = entity or (context.hub_name, context.log)
        try:
            where = parse_address(
                address,
                hub_name=name,
                consumer_groups=context.consumer_groups,
                partition_count=log.partition_count,
            )
            first = starting_sequence(selector, log, where.partition)
        except LinkRefused as error:
            self._refuse(session, fields, error)
            return
        link = EventSenderLink(
            handle=int(fields[1]),
            consumer_group=where.consumer_group,
            partition=where.partition,
            next_sequence=first,
            log=None if log is context.log else log,
        )
        claim = Claim(
            where.consumer_group,
            where.partition,
            _owner_level(fields[13]),
            evict=lambda reason: self._evict(session, link, reason),
            entity=name,
        )
        try:
            context.owners.claim(claim)
        except LinkRefused as error:
            self._refuse(session, fields, error)
            return
        link.claim = claim
        session.links[link.handle] = link
        desired = fields[12] if isinstance(fields[12], list) else [fields[12]]
        link.runtime_metrics = RUNTIME_METRIC in desired
        offered = [RUNTIME_METRIC] if link.runtime_metrics else None
        self._reply_attach(session, fields, we_send=True, selector=selector, offered=offered)
        link.pump = asyncio.create_task(
            pump_events(self.connection, session, link),
            name=f"iothub[eventhub].pump[{where.partition}]",
        )
        _log.debug(
            "eventhub.receiver_attached",
            consumer_group=where.consumer_group,
            partition=where.partition,
            first_sequence=first,
        )

    def _evict(self, session: Session, link: EventSenderLink, reason: str) -> None:
        # The registry has already forgotten the claim; only the link and its pump remain.
        session.links.pop(link.handle, None)
        if link.pump is not None:
            link.pump.cancel()
        error = codec.AmqpError(condition=LINK_STOLEN, description=reason)
        self.connection.send(
            session.channel, codec.DetachFrame(handle=link.handle, closed=True, error=error)
        )
        _log.info("eventhub.receiver_evicted", partition=link.partition, reason=reason)

    def _reply_attach(
        self,
        session: Session,
        fields: list[Any],
        *,
        we_send: bool,
        selector: str | None = None,
        offered: list[bytes] | None = None,
    ) -> None:
        source = codec.pad(fields[5] or [], 1)
        target = codec.pad(fields[6] or [], 1)
        filters = {SELECTOR_FILTER: (SELECTOR_FILTER, selector)} if selector else None
        self.connection.send(
            session.channel,
            codec.AttachFrame(
                name=codec.text(fields[0]) or "",
                handle=int(fields[1]),
                role=not we_send,
                send_settle_mode=fields[3],
                rcv_settle_mode=fields[4],
                source=codec.Source(address=codec.text(source[0]), filters=filters),
                target=codec.Target(address=codec.text(target[0])),
                unsettled=None,
                incomplete_unsettled=False,
                initial_delivery_count=0 if we_send else None,
                max_message_size=None,
                offered_capabilities=offered,
                desired_capabilities=None,
                properties=None,
            ),
        )

    def _refuse(self, session: Session, fields: list[Any], error: LinkRefused) -> None:
        # Event Hubs completes the attach, then detaches at once with the reason.
        self._reply_attach(session, fields, we_send=bool(fields[2]))
        self.connection.send(
            session.channel,
            codec.DetachFrame(
                handle=int(fields[1]),
                closed=True,
                error=codec.AmqpError(condition=error.condition, description=str(error)),
            ),
        )
        _log.info("eventhub.link_refused", condition=error.condition.decode(), reason=str(error))

    def _on_flow(self, session: Session, fields: list[Any]) -> None:
        session.on_flow(fields[0], int(fields[1] or 0))
        link = session.links.get(fields[4]) if fields[4] is not None else None
        if isinstance(link, EventSenderLink):
            link.on_flow(fields[5], fields[6], drain=bool(fields[8]))
        if fields[9]:  # echo
            if isinstance(link, EventSenderLink):
                send_flow(self.connection, session, link.handle, link.delivery_count, link.credit)
            else:
                send_flow(self.connection, session, None, 0, 0)

    async def _on_transfer(self, session: Session, fields: list[Any]) -> None:
        payload = bytes(fields[-1])
        fields = codec.pad(fields[:-1], 11)
        session.next_incoming_id += 1
        link = session.links.get(int(fields[0]))
        if not isinstance(link, RequestLink):
            raise ProtocolError(b"amqp:session:unattached-handle", f"no request link {fields[0]}")
        if link.pending_delivery_id is None:
            link.pending_delivery_id = fields[1]
        link.pending.extend(payload)
        if fields[5]:  # more: the rest of this message follows
            return
        request = codec.decode_message(bytes(link.pending))
        delivery_id, link.pending_delivery_id = link.pending_delivery_id, None
        link.pending.clear()
        reply, accepted = nodes.answer(
            link.node, request, context=self.context, authorized=self.connection.authorized
        )
        if accepted:
            self.connection.authorized = True
        elif link.node == nodes.CBS_NODE:
            _log.info("eventhub.token_rejected", peer=self.connection.peer)
        if not fields[4] and delivery_id is not None:  # unsettled: accept it
            self.connection.send(
                session.channel,
                codec.DispositionFrame(
                    role=True,
                    first=delivery_id,
                    last=delivery_id,
                    settled=True,
                    state=codec.Accepted(),
                    batchable=None,
                ),
            )
        response_link = session.response_link(link.node)
        # Replies do not wait for credit: the SDK grants thousands and asks one at a time.
        if response_link is not None:
            send_message(self.connection, session, response_link, codec.encode_message(reply))
        await self.connection.drain()

    def _on_detach(self, session: Session, fields: list[Any]) -> None:
        link = session.links.pop(int(fields[0]), None)
        if link is None:
            return  # we refused or evicted it, and detached it then
        if isinstance(link, EventSenderLink):
            self._stop_receiver(link)
        self.connection.send(
            session.channel,
            codec.DetachFrame(handle=link.handle, closed=bool(fields[1]), error=None),
        )
