"""From a new socket to an authenticated CONNECT: TLS, the first packet, the credentials."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bridge_sim.iothub.mqtt import codec
from bridge_sim.iothub.mqtt.auth import (
    REFUSED_NOT_AUTHORIZED,
    REFUSED_SERVER_UNAVAILABLE,
    AuthResult,
    ConnectRefusedError,
    authenticate,
)
from bridge_sim.iothub.mqtt.state import ENDPOINT_NAME
from bridge_sim.iothub.mqtt.tls import TlsStream
from bridge_sim.iothub.mqtt.websocket import WebSocketStream
from bridge_sim.iothub.quotas import Operation

if TYPE_CHECKING:
    from collections.abc import Sequence

    from cryptography import x509
    from OpenSSL import SSL

    from bridge_sim.iothub.mqtt.state import HubState

__all__ = ["Accepted", "accept_device"]


@dataclass
class Accepted:
    """A device past CONNECT: its TLS stream, decoder state and identity."""

    stream: TlsStream
    decoder: codec.PacketDecoder
    connect: codec.Connect
    auth: AuthResult
    # Packets that arrived in the same read as CONNECT.
    pending: list[codec.Packet]


async def _first_packet(
    stream: TlsStream, decoder: codec.PacketDecoder
) -> tuple[codec.Packet, list[codec.Packet]]:
    while True:
        data = await stream.read()
        if not data:
            raise ConnectionError("peer closed before CONNECT")
        packets = decoder.feed(data)
        if packets:
            return packets[0], packets[1:]


def _refuse_by_fault_or_quota(hub: HubState) -> None:
    rule = hub.faults.check(ENDPOINT_NAME, "connect")
    if rule is not None:
        code = REFUSED_NOT_AUTHORIZED if rule.status in {401, 403} else REFUSED_SERVER_UNAVAILABLE
        raise ConnectRefusedError(code, f"injected fault {rule.id}")
    # IoT Hub refuses connections beyond the new-connection throttle; 3 tells clients to retry.
    if not hub.quotas.try_acquire(Operation.NEW_CONNECTION):
        raise ConnectRefusedError(REFUSED_SERVER_UNAVAILABLE, "new-connection throttle")


async def accept_device(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    *,
    context: SSL.Context,
    hub: HubState,
    hub_hostname: str,
    trusted_cas: Sequence[x509.Certificate],
    websocket: bool = False,
) -> Accepted:
    """Handshake and authenticate; on refusal send the CONNACK, close, and re-raise.

    Raises ConnectRefusedError (CONNACK sent), or ConnectionError / MalformedPacketError /
    TimeoutError when the peer never gets as far as a valid CONNECT.
    """
    async with asyncio.timeout(hub.limits.connect_timeout):
        stream = await TlsStream.accept(context, reader, writer)
        if websocket:
            try:
                stream = await WebSocketStream.upgrade(stream)
            except Exception:
                stream.abort()
                raise
        decoder = codec.PacketDecoder(hub.limits.max_packet_bytes)
        try:
            first, pending = await _first_packet(stream, decoder)
        except Exception:
            stream.abort()
            raise
    if first.type is not codec.PacketType.CONNECT:
        stream.abort()
        raise codec.MalformedPacketError(f"first packet is {first.type.name}, not CONNECT")
    try:
        connect = codec.parse_connect(first.body)
    except codec.MalformedPacketError:
        stream.abort()
        raise
    try:
        _refuse_by_fault_or_quota(hub)
        auth = authenticate(
            connect,
            registry=hub.registry,
            hub_hostname=hub_hostname,
            client_certificate=stream.peer_certificate(),
            client_chain=stream.peer_chain(),
            trusted_cas=trusted_cas,
        )
    except ConnectRefusedError as refusal:
        stream.write(codec.encode_connack(refusal.return_code))
        await stream.drain()
        stream.close()
        raise
    return Accepted(stream, decoder, connect, auth, pending)
