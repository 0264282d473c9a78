"""Outgoing deliveries: transfer frames cut to the client's frame size, and event pumps."""

from __future__ import annotations

import asyncio
import struct
from typing import TYPE_CHECKING, Any

from bridge.logging import get_logger
from bridge_sim.iothub.eventhub import codec, wire
from bridge_sim.iothub.eventhub.events import event_message
from bridge_sim.iothub.eventhub.session import SESSION_WINDOW

if TYPE_CHECKING:
    from bridge_sim.iothub.eventhub.connection import AmqpConnection
    from bridge_sim.iothub.eventhub.log import StoredEvent
    from bridge_sim.iothub.eventhub.session import EventSenderLink, ResponseLink, Session

__all__ = ["pump_events", "send_flow", "send_message"]

_log = get_logger("iothub.eventhub")
_PUMP_BATCH = 100
# More than a single-frame TRANSFER's performative and frame header ever take.
_TRANSFER_OVERHEAD = 64


def send_flow(
    connection: AmqpConnection,
    session: Session,
    handle: int | None,
    delivery_count: int,
    credit: int,
    *,
    drain: bool = False,
) -> None:
    """Send our session state, and a link's when `handle` is given."""
    connection.send(
        session.channel,
        codec.FlowFrame(
            next_incoming_id=session.next_incoming_id,
            incoming_window=SESSION_WINDOW,
            next_outgoing_id=session.next_transfer_id,
            outgoing_window=SESSION_WINDOW,
            handle=handle,
            delivery_count=delivery_count if handle is not None else None,
            link_credit=credit if handle is not None else None,
            available=None,
            drain=drain,
            echo=False,
            properties=None,
        ),
    )


def send_message(
    connection: AmqpConnection,
    session: Session,
    link: ResponseLink | EventSenderLink,
    payload: bytes,
) -> None:
    """Send one settled delivery, in as many frames as the client's max frame size needs."""
    delivery_id = session.next_delivery_id
    session.next_delivery_id += 1
    tag = struct.pack(">I", link.delivery_count & 0xFFFFFFFF)

    def frame(chunk: bytes, *, more: bool) -> Any:
        # Every chunk repeats delivery id and tag, as the SDK's own sender does.
        return codec.TransferFrame(
            handle=link.handle,
            delivery_id=delivery_id,
            delivery_tag=tag,
            message_format=0,
            settled=True,
            more=more,
            rcv_settle_mode=None,
            state=None,
            resume=None,
            aborted=None,
            batchable=None,
            payload=chunk,
        )

    if len(payload) + _TRANSFER_OVERHEAD <= connection.remote_max_frame_size:
        room = len(payload) or 1  # one frame; no need to measure the performative
    else:
        overhead = len(codec.encode_frame(session.channel, frame(b"", more=True)))
        room = max(64, connection.remote_max_frame_size - overhead)
    chunks = [payload[start : start + room] for start in range(0, len(payload), room)] or [b""]
    for index, chunk in enumerate(chunks):
        connection.send(session.channel, frame(chunk, more=index < len(chunks) - 1))
        session.next_transfer_id += 1
        session.remote_incoming_window -= 1
    link.delivery_count += 1


async def pump_events(connection: AmqpConnection, session: Session, link: EventSenderLink) -> None:
    """Send a partition's events as they come, never beyond the link's credit."""
    try:
        await _pump(connection, session, link)
    except asyncio.CancelledError:
        raise
    except Exception as error:
        # The socket went away under us; the connection's read loop cleans up.
        _log.debug("eventhub.pump_stopped", partition=link.partition, error=repr(error))


async def _pump(connection: AmqpConnection, session: Session, link: EventSenderLink) -> None:
    log = link.log or connection.context.log
    # Appends set the same event a FLOW sets, so one wait covers both without a task apiece.
    log.listen(link.partition, link.wakeup)
    try:
        while not connection.closed:
            # No await between a check and clearing `wakeup`: a FLOW cannot slip in and be lost.
            if link.credit <= 0 or session.remote_incoming_window <= 0:
                link.wakeup.clear()
                await link.wakeup.wait()
                continue
            events = log.read(link.partition, link.next_sequence, min(link.credit, _PUMP_BATCH))
            if events:
                _send_events(connection, session, link, events)
                await connection.drain()
            elif link.drain:
                # Nothing to send: use the credit up, as AMQP's drain asks, and say so.
                link.delivery_count += link.credit
                link.credit, link.drain = 0, False
                send_flow(connection, session, link.handle, link.delivery_count, 0, drain=True)
            else:
                link.wakeup.clear()
                await link.wakeup.wait()
    finally:
        log.unlisten(link.partition, link.wakeup)


def _send_events(
    connection: AmqpConnection, session: Session, link: EventSenderLink, events: list[StoredEvent]
) -> None:
    """Send what credit and window allow, as one write: a syscall per event cost as much."""
    log = link.log or connection.context.log
    frames: list[bytes] = []
    for event in events:
        if link.credit <= 0 or session.remote_incoming_window <= 0:
            break
        payload = None if link.runtime_metrics else wire.encode_event(event)
        if payload is not None and (
            len(payload) + _TRANSFER_OVERHEAD <= connection.remote_max_frame_size
        ):
            tag = struct.pack(">I", link.delivery_count & 0xFFFFFFFF)
            frames.append(
                wire.transfer_frame(
                    session.channel, link.handle, session.next_delivery_id, tag, payload
                )
            )
            session.next_delivery_id += 1
            session.next_transfer_id += 1
            session.remote_incoming_window -= 1
            link.delivery_count += 1
        else:
            # Runtime metrics, several frames or an odd annotation: the general encoder.
            connection.write(b"".join(frames))
            frames.clear()
            last = log.partition_info(link.partition) if link.runtime_metrics else None
            message = event_message(event, last_enqueued=last)
            send_message(connection, session, link, codec.encode_message(message))
        link.credit -= 1
        link.next_sequence = event.sequence_number + 1
    connection.write(b"".join(frames))
