"""`AwsPublisher`: QoS 1 publishes to AWS IoT over the bridge's mutual-TLS session.

The reverse path republishes cut-over devices' telemetry on their old AWS topics.
`publish` returns once the broker acknowledged the message (PUBACK), so a caller that
checkpoints after it never loses one. While the connection is down awscrt keeps QoS 1
publishes queued and sends them once it is back (with the session rejoined, unacknowledged
ones again, flagged DUP): a publish waits through an outage rather than failing.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Self

from awscrt import mqtt5

from bridge.aws import crt
from bridge.config import CloudSettings
from bridge.errors import ConfigError, Rejected, SourceError
from bridge.logging import get_logger

__all__ = ["AwsPublisher"]

log = get_logger("aws.publisher")
_DEFAULT_PORT = 8883
_STOP_TIMEOUT_S = 10.0
# PUBACK codes that mean the broker took the message.
_ACCEPTED = {mqtt5.PubackReasonCode.SUCCESS, mqtt5.PubackReasonCode.NO_MATCHING_SUBSCRIBERS}


def _endpoint(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if host and port.isdigit():
        return host, int(port)
    return value, _DEFAULT_PORT


class AwsPublisher:
    """Publishes to AWS IoT as `client_id`; an async context manager.

    Args:
        cloud: Endpoint, CA and the bridge's certificate and key (`AWS_IOT_*`).
        client_id: MQTT client id (the bridge's IoT policy allows `iot-bridge*`).
        session_expiry_s: How long the broker keeps the session, so that a reconnect
            resends what was not acknowledged.
        connect_timeout_s: How long entering the context waits for the first connection.
    """

    def __init__(
        self,
        cloud: CloudSettings,
        *,
        client_id: str,
        session_expiry_s: int = 300,
        connect_timeout_s: float = 30.0,
        keep_alive_s: int = 60,
    ) -> None:
        paths = (cloud.AWS_IOT_ROOT_CA, cloud.AWS_IOT_BRIDGE_CERT, cloud.AWS_IOT_BRIDGE_KEY)
        if cloud.AWS_IOT_DATA_ENDPOINT is None or any(path is None for path in paths):
            raise ConfigError(
                "the reverse path publishes to AWS IoT: set AWS_IOT_DATA_ENDPOINT, "
                "AWS_IOT_ROOT_CA, AWS_IOT_BRIDGE_CERT and AWS_IOT_BRIDGE_KEY"
            )
        assert cloud.AWS_IOT_ROOT_CA is not None
        assert cloud.AWS_IOT_BRIDGE_CERT is not None
        assert cloud.AWS_IOT_BRIDGE_KEY is not None
        host, port = _endpoint(cloud.AWS_IOT_DATA_ENDPOINT)
        self._spec = crt.ClientSpec(
            host=host,
            port=port,
            ca_file=cloud.AWS_IOT_ROOT_CA,
            cert_file=cloud.AWS_IOT_BRIDGE_CERT,
            key_file=cloud.AWS_IOT_BRIDGE_KEY,
            client_id=client_id,
            session_expiry_s=session_expiry_s,
            receive_maximum=1,  # nothing is subscribed
            keep_alive_s=keep_alive_s,
            reconnect_delay_s=(0.5, 30.0),
        )
        self._connect_timeout_s = connect_timeout_s
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: Any = None
        self._first: asyncio.Future[None] | None = None
        self._stopped = asyncio.Event()
        self._last_error = "no attempt finished yet"
        self.connected = False

    @property
    def client_id(self) -> str:
        """The MQTT client id."""
        return self._spec.client_id

    @property
    def endpoint(self) -> str:
        """host:port of the MQTT endpoint."""
        return f"{self._spec.host}:{self._spec.port}"

    async def __aenter__(self) -> Self:
        self._loop = asyncio.get_running_loop()
        self._first = self._loop.create_future()
        self._client = crt.build_client(
            self._spec,
            crt.Callbacks(
                publish=lambda _data: None,
                connected=lambda _data: self._post(self._on_connected),
                failed=self._crt_failed,
                disconnected=self._crt_disconnected,
                stopped=lambda _data: self._post(self._stopped.set),
            ),
        )
        self._client.start()
        try:
            async with asyncio.timeout(self._connect_timeout_s):
                await asyncio.shield(self._first)
        except TimeoutError:
            await self.aclose()
            raise SourceError(
                f"no connection to {self.endpoint} as {self.client_id} within "
                f"{self._connect_timeout_s:g}s; last failure: {self._last_error}"
            ) from None
        except BaseException:
            await self.aclose()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def publish(
        self,
        topic: str,
        payload: bytes,
        *,
        content_type: str | None = None,
        user_properties: Mapping[str, str] | None = None,
    ) -> None:
        """Publish at QoS 1; return once AWS IoT acknowledged it.

        Raises `Rejected` when the broker refused the message (its policy, a bad topic):
        sending it again cannot help.
        """
        client = self._client
        if client is None:
            raise SourceError("the AWS publisher is closed")
        packet = mqtt5.PublishPacket(
            topic=topic,
            payload=payload,
            qos=mqtt5.QoS.AT_LEAST_ONCE,
            content_type=content_type,
            user_properties=[
                mqtt5.UserProperty(name, value) for name, value in (user_properties or {}).items()
            ]
            or None,
        )
        result = await self._crt_result(client.publish(packet))
        puback = getattr(result, "puback", None)
        code = getattr(puback, "reason_code", mqtt5.PubackReasonCode.SUCCESS)
        if code not in _ACCEPTED:
            reason = getattr(puback, "reason_string", None) or getattr(code, "name", str(code))
            raise Rejected(f"AWS IoT refused the publish on {topic}: {reason}")

    async def aclose(self) -> None:
        """Disconnect and stop the client."""
        client, self._client = self._client, None
        if client is None:
            return
        self.connected = False
        client.stop(mqtt5.DisconnectPacket())
        try:
            async with asyncio.timeout(_STOP_TIMEOUT_S):
                await self._stopped.wait()
        except TimeoutError:
            log.warning("aws.stop_unconfirmed", client_id=self.client_id)

    # --- awscrt threads hand everything to the event loop ---------------------------------

    def _post(self, callback: Any, *args: Any) -> None:
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # loop closed: nobody is left to tell
                loop.call_soon_threadsafe(callback, *args)

    def _crt_failed(self, data: Any) -> None:
        self._post(self._on_failed, crt.describe_failure(data), crt.is_permanent(data))

    def _crt_disconnected(self, data: Any) -> None:
        self._post(self._on_disconnected, crt.describe_failure(data))

    def _on_connected(self) -> None:
        self.connected = True
        log.info("aws.connected", client_id=self.client_id, endpoint=self.endpoint)
        if self._first is not None and not self._first.done():
            self._first.set_result(None)

    def _on_failed(self, reason: str, permanent: bool) -> None:  # noqa: FBT001 - callback shape
        self._last_error = reason
        log.warning("aws.connect_failed", client_id=self.client_id, error=reason)
        if permanent and self._first is not None and not self._first.done():
            self._first.set_exception(
                SourceError(
                    f"cannot connect to {self.endpoint} as {self.client_id}: {reason} "
                    "(check AWS_IOT_ROOT_CA, AWS_IOT_BRIDGE_CERT, AWS_IOT_BRIDGE_KEY and the "
                    "certificate's policy)"
                )
            )

    def _on_disconnected(self, reason: str) -> None:
        self.connected = False
        if self._client is not None:
            self._last_error = reason
            log.warning("aws.disconnected", client_id=self.client_id, error=reason)

    async def _crt_result(self, future: concurrent.futures.Future[Any]) -> Any:
        """An awscrt future's result, awaited without cancelling it (see AwsSource)."""
        done = asyncio.Event()
        future.add_done_callback(lambda _future: self._post(done.set))
        await done.wait()
        return future.result()
