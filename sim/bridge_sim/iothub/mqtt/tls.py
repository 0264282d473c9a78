"""TLS over asyncio streams with pyOpenSSL memory BIOs.

Python's `ssl` module can only request a client certificate by verifying it against known
CAs, yet IoT Hub accepts any certificate in the handshake (self-signed ones included) and
authenticates it later, at MQTT CONNECT. pyOpenSSL lets the verify callback accept
everything, and memory BIOs let the TLS engine run over plain asyncio streams.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from OpenSSL import SSL

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

__all__ = ["TlsError", "TlsStream", "server_context"]

_CHUNK = 65536


class TlsError(ConnectionError):
    """The TLS handshake or record layer failed."""


def _accept_any(
    _connection: SSL.Connection, _cert: object, _error: int, _depth: int, _ok: int
) -> bool:
    # Client certificates are judged at CONNECT against the registry, never here.
    return True


def server_context(cert_pem: str, key_pem: str) -> SSL.Context:
    """A TLS 1.2+ server context that requests, but does not require, a client certificate."""
    context = SSL.Context(SSL.TLS_SERVER_METHOD)
    context.set_min_proto_version(SSL.TLS1_2_VERSION)
    chain = x509.load_pem_x509_certificates(cert_pem.encode())
    key: PrivateKeyTypes = serialization.load_pem_private_key(key_pem.encode(), password=None)
    # pyOpenSSL deprecates its own X509 objects; the installed stubs predate that.
    modern: Any = context
    modern.use_certificate(chain[0])
    for intermediate in chain[1:]:
        modern.add_extra_chain_cert(intermediate)
    modern.use_privatekey(key)
    context.check_privatekey()
    context.set_verify(SSL.VERIFY_PEER, _accept_any)
    # OpenSSL refuses session reuse under VERIFY_PEER without a session id context.
    context.set_session_id(b"iothub-sim-mqtt")
    return context


class TlsStream:
    """A server-side TLS session over an asyncio reader/writer pair."""

    def __init__(
        self, connection: SSL.Connection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self._connection = connection
        self._reader = reader
        self._writer = writer
        self._plaintext: list[bytes] = []
        self._flush_scheduled = False

    @classmethod
    async def accept(
        cls, context: SSL.Context, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> TlsStream:
        """Run the server handshake; raise TlsError when it fails or the peer leaves."""
        connection = SSL.Connection(context, None)
        connection.set_accept_state()
        stream = cls(connection, reader, writer)
        while True:
            try:
                connection.do_handshake()
                break
            except SSL.WantReadError:
                await stream._flush()
                if not await stream._pull():
                    raise TlsError("peer closed during the handshake") from None
            except SSL.Error as error:
                await stream._flush_quietly()
                raise TlsError(f"handshake failed: {error}") from error
        await stream._flush()
        return stream

    @property
    def peer_address(self) -> str:
        peer = self._writer.get_extra_info("peername")
        return f"{peer[0]}:{peer[1]}" if peer else "?"

    def peer_certificate(self) -> x509.Certificate | None:
        """The client's leaf certificate, if it sent one."""
        connection: Any = self._connection  # the stubs predate `as_cryptography`
        cert: x509.Certificate | None = connection.get_peer_certificate(as_cryptography=True)
        return cert

    def peer_chain(self) -> list[x509.Certificate]:
        """The certificates the client sent after its leaf (intermediates)."""
        connection: Any = self._connection
        chain: list[x509.Certificate] = connection.get_peer_cert_chain(as_cryptography=True) or []
        leaf = self.peer_certificate()
        return [cert for cert in chain if cert != leaf]

    async def _pull(self) -> bool:
        data = await self._reader.read(_CHUNK)
        if not data:
            return False
        self._connection.bio_write(data)
        return True

    def _pending_output(self) -> bytes:
        out = bytearray()
        while True:
            try:
                chunk = self._connection.bio_read(_CHUNK)
            except SSL.WantReadError:
                break
            if not chunk:
                break
            out += chunk
        return bytes(out)

    async def _flush(self) -> None:
        data = self._pending_output()
        if data:
            self._writer.write(data)
            await self._writer.drain()

    async def _flush_quietly(self) -> None:
        with contextlib.suppress(Exception):
            await self._flush()

    async def read(self) -> bytes:
        """The decrypted bytes available now (waiting for some); b"" once the peer closed."""
        while True:
            try:
                data: bytes = self._connection.recv(_CHUNK)
            except SSL.WantReadError:
                await self._flush()
                if not await self._pull():
                    return b""
                continue
            except (SSL.ZeroReturnError, SSL.SysCallError):
                return b""
            except SSL.Error as error:
                raise TlsError(f"TLS record error: {error}") from error
            await self._flush()
            return data + self._drain_records()

    def _drain_records(self) -> bytes:
        # Every whole record already received, so a burst is handled (and acked) as one.
        more = bytearray()
        while len(more) < _CHUNK:
            try:
                more += self._connection.recv(_CHUNK)
            except SSL.Error:
                # Want-read, or an error or close the next `read` reports.
                break
        return bytes(more)

    def write(self, data: bytes) -> None:
        """Queue `data`; everything queued in one loop iteration goes out as one TLS record."""
        if self._writer.is_closing():
            return
        self._plaintext.append(data)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._encrypt_queued)

    def _encrypt_queued(self) -> None:
        # Batching matters: a burst of telemetry gets its PUBACKs in one record and send.
        self._flush_scheduled = False
        if not self._plaintext or self._writer.is_closing():
            self._plaintext.clear()
            return
        data = b"".join(self._plaintext)
        self._plaintext.clear()
        try:
            self._connection.sendall(data)
        except SSL.Error:
            self.abort()
            return
        out = self._pending_output()
        if out:
            self._writer.write(out)

    async def drain(self) -> None:
        """Encrypt what is queued and wait until the socket takes it."""
        self._encrypt_queued()
        with contextlib.suppress(ConnectionError):
            await self._writer.drain()

    def close(self) -> None:
        """Send close_notify if possible and close the socket; never waits for the peer."""
        if self._writer.is_closing():
            return
        self._encrypt_queued()
        with contextlib.suppress(SSL.Error):
            self._connection.shutdown()
        out = self._pending_output()
        if out:
            self._writer.write(out)
        self._writer.close()

    def abort(self) -> None:
        """Drop the socket at once (a fault, or a peer that misbehaves)."""
        transport = self._writer.transport
        transport.abort()
