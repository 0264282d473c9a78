"""The Event Hubs-compatible AMQP 1.0 endpoint of the IoT Hub emulator."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import TYPE_CHECKING, Self

from bridge.logging import get_logger
from bridge_sim.errors import SimulatorError
from bridge_sim.iothub.eventhub.connection import AmqpConnection, EndpointContext

if TYPE_CHECKING:
    import ssl
    from collections.abc import Iterable, Mapping
    from types import TracebackType

    from bridge_sim.iothub.eventhub.log import EventLog

__all__ = ["AmqpEndpoint"]

_log = get_logger("iothub.eventhub")


class AmqpEndpoint:
    """Serves an `EventLog` to `EventHubConsumerClient` over AMQP 1.0, plain or TLS.

    Args:
        log: The events to serve.
        hub_name: The entity path (`EntityPath=` in the connection string).
        namespace: The Event Hubs namespace the built-in endpoint reports, e.g. `iothub-ns-myhub`.
        host: Address to listen on.
        port: Port to listen on; 0 picks a free one (see `port`).
        ssl_context: Server TLS context; None serves plain AMQP, as the SDK's
            `UseDevelopmentEmulator=true` expects.
        shared_access_keys: Policy name to base64 key; put-token checks SAS tokens against them.
        consumer_groups: Consumer groups receivers may name; others are refused.
    """

    def __init__(
        self,
        *,
        log: EventLog,
        hub_name: str,
        namespace: str,
        host: str = "127.0.0.1",
        port: int = 0,
        ssl_context: ssl.SSLContext | None = None,
        shared_access_keys: Mapping[str, str],
        consumer_groups: Iterable[str] = ("$Default",),
    ) -> None:
        if not hub_name or "/" in hub_name:
            raise ValueError(f"invalid hub name {hub_name!r}")
        if not shared_access_keys:
            raise ValueError("at least one shared access key is needed")
        self.namespace = namespace
        self.host = host
        self.ssl_context = ssl_context
        self.context = EndpointContext(
            log=log,
            hub_name=hub_name,
            shared_access_keys=dict(shared_access_keys),
            consumer_groups=frozenset(consumer_groups) | {"$Default"},
            container_id=f"{namespace}-{uuid.uuid4().hex[:8]}",
        )
        self._requested_port = port
        self._server: asyncio.Server | None = None
        self._connections: set[AmqpConnection] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        """The port the server listens on (the real one when 0 was asked for)."""
        if self._server is None or not self._server.sockets:
            raise SimulatorError("the AMQP endpoint is not running")
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def receiver_count(self) -> int:
        """Partition receivers attached right now, across every connection."""
        return sum(
            len(session.event_links())
            for connection in self._connections
            for session in connection.sessions.values()
        )

    def connection_string(self, policy: str, *, emulator_style: bool) -> str:
        """A connection string for `policy` pointing at this endpoint."""
        key = self.context.shared_access_keys.get(policy)
        if key is None:
            raise SimulatorError(f"no shared access policy named {policy!r}")
        if emulator_style:
            endpoint = f"sb://{self.host}:{self.port}/"
        else:
            endpoint = f"sb://{self.namespace}.servicebus.windows.net/"
        text = (
            f"Endpoint={endpoint};SharedAccessKeyName={policy};SharedAccessKey={key};"
            f"EntityPath={self.context.hub_name}"
        )
        return f"{text};UseDevelopmentEmulator=true" if emulator_style else text

    async def __aenter__(self) -> Self:
        try:
            self._server = await asyncio.start_server(
                self._accept, self.host, self._requested_port, ssl=self.ssl_context
            )
        except OSError as error:
            raise SimulatorError(
                f"cannot listen on {self.host}:{self._requested_port}: {error}"
            ) from error
        _log.info(
            "eventhub.endpoint_started",
            host=self.host,
            port=self.port,
            hub=self.context.hub_name,
            tls=self.ssl_context is not None,
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        for connection in list(self._connections):
            await connection.close(b"amqp:connection:forced", "The endpoint is shutting down.")
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await server.wait_closed()
        _log.info("eventhub.endpoint_stopped", hub=self.context.hub_name)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connection = AmqpConnection(reader, writer, self.context)
        task = asyncio.current_task()
        self._connections.add(connection)
        if task is not None:
            self._tasks.add(task)
        try:
            await connection.serve()
        finally:
            self._connections.discard(connection)
            if task is not None:
                self._tasks.discard(task)
