"""One device-facing AMQP connection: many identities, each authorized by its own token.

Framing, SASL and sessions are the Event Hubs endpoint's (`eventhub.connection`); what
differs is who may do what. A connection holds a grant per identity whose token it put
on `$cbs` (or that logged in with SASL PLAIN); a grant lapses with its token, unless a
new token was put before, and then that identity's links are detached.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from bridge.logging import get_logger
from bridge_sim.iothub.amqp.cbs import CbsRefusal, authorize, parse_plain_user
from bridge_sim.iothub.amqp.links import (
    ENDPOINT_NAME,
    DeviceLinkHandler,
    OutboundLink,
    TelemetryLink,
    condition_for,
    telemetry_fields,
    throttle,
)
from bridge_sim.iothub.eventhub import codec
from bridge_sim.iothub.eventhub.connection import AmqpConnection, EndpointContext
from bridge_sim.iothub.eventhub.errors import ProtocolError
from bridge_sim.iothub.quotas import Operation

if TYPE_CHECKING:
    from bridge_sim.iothub.amqp.endpoint import DeviceAmqpEndpoint
    from bridge_sim.iothub.mqtt.auth import AuthResult
    from bridge_sim.iothub.mqtt.state import HubState

__all__ = ["DeviceAmqpConnection"]

_log = get_logger("sim.iothub.amqp")
IdentityKey = tuple[str, str | None]


class DeviceAmqpConnection(AmqpConnection):
    """Serves one TLS connection carrying any number of device and module identities."""

    links: DeviceLinkHandler

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        context: EndpointContext,
        endpoint: DeviceAmqpEndpoint,
    ) -> None:
        super().__init__(reader, writer, context)
        self.endpoint = endpoint
        self.hub: HubState = endpoint.hub
        self.hub_hostname = endpoint.hub_hostname
        self.grants: dict[IdentityKey, AuthResult] = {}
        self._expiries: dict[IdentityKey, asyncio.TimerHandle] = {}
        self.links = DeviceLinkHandler(self)

    # -- who may send --------------------------------------------------------------------

    def put_token(self, device_id: str, module_id: str | None, token: str) -> None:
        """Authorize an identity with a SAS token (or renew its grant); CbsRefusal if not."""
        key = (device_id, module_id)
        # Authorizing an identity on a connection is what IoT Hub's connect throttle counts.
        if key not in self.grants and not self.hub.quotas.try_acquire(Operation.NEW_CONNECTION):
            raise CbsRefusal(429, "Device connection throttled")
        self.grant(authorize(self.hub.registry, device_id, module_id, token))

    def grant(self, auth: AuthResult) -> None:
        key = auth.key
        self.grants[key] = auth
        old = self._expiries.pop(key, None)
        if old is not None:
            old.cancel()
        if auth.token_expiry is not None:
            delay = max(0.0, auth.token_expiry - time.time())
            loop = asyncio.get_running_loop()
            self._expiries[key] = loop.call_later(delay, self.revoke, key, "SAS token expired")

    def revoke(self, key: IdentityKey, reason: str) -> None:
        """Forget an identity's grant and detach its links."""
        self.grants.pop(key, None)
        timer = self._expiries.pop(key, None)
        if timer is not None:
            timer.cancel()
        if not self.closed:
            self.links.revoke(key, reason)
            _log.info("sim.iothub.amqp_identity_revoked", device_id=key[0], module_id=key[1])

    def _sasl_accepts(self, fields: list[Any]) -> bool:
        mechanism = bytes(fields[0]) if fields and fields[0] else b""
        if mechanism == b"ANONYMOUS":
            return True  # identities authorize later, on $cbs
        if mechanism != b"PLAIN":
            return False
        response = bytes(fields[1] or b"") if len(fields) > 1 else b""
        _authzid, _, credentials = response.partition(b"\0")
        user, _, password = credentials.partition(b"\0")
        try:
            device_id, module_id = parse_plain_user(user.decode(errors="replace"), self.hub_name)
            token = password.decode(errors="replace")
            self.grant(authorize(self.hub.registry, device_id, module_id, token))
        except CbsRefusal as refusal:
            _log.info("sim.iothub.amqp_sasl_refused", reason=refusal.reason)
            return False
        return True

    @property
    def hub_name(self) -> str:
        return self.context.hub_name

    # -- telemetry -----------------------------------------------------------------------

    async def deliver(self, link: TelemetryLink, data: bytes) -> Any:
        """Put one message into the hub's pipeline; None, or the AMQP error to reject with."""
        auth = self.grants.get(link.key)
        if auth is None:
            return codec.AmqpError(condition=condition_for(401), description="No valid token.")
        rule = self.hub.faults.check(ENDPOINT_NAME, "telemetry")
        if rule is not None:
            return codec.AmqpError(
                condition=condition_for(rule.status),
                description=f"{rule.code}: injected fault {rule.id}",
            )
        try:
            message = codec.decode_message(data)
        except codec.FrameDecodeError as error:
            raise ProtocolError(b"amqp:decode-error", f"undecodable message: {error}") from error
        fields = telemetry_fields(message)
        # IoT Hub counts the body and the application properties against the limit.
        size = len(fields["body"]) + sum(len(k) + len(v) for k, v in fields["properties"].items())
        if size > self.hub.limits.max_message_bytes:
            return codec.AmqpError(
                condition=condition_for(413),
                description=f"Message of {size} bytes exceeds the limit.",
            )
        throttled = await throttle(self)
        if throttled is not None:
            return throttled
        self.hub.append_telemetry(
            device_id=auth.device_id,
            module_id=auth.module_id,
            extra_annotations={
                "iothub-connection-auth-method": auth.auth_method_annotation,
                "iothub-connection-auth-generation-id": auth.generation_id,
            },
            **fields,
        )
        self.hub.registry_activity(auth)
        return None

    def link_opened(self, link: TelemetryLink | OutboundLink) -> None:
        self.endpoint.link_opened(link.key)

    def link_closed(self, link: TelemetryLink | OutboundLink) -> None:
        self.endpoint.link_closed(link.key)

    # -- lifecycle -----------------------------------------------------------------------

    def _on_open(self, fields: list[Any]) -> None:
        super()._on_open(fields)
        rule = self.hub.faults.check(ENDPOINT_NAME, "connect")
        if rule is not None:
            raise ProtocolError(condition_for(rule.status), f"Injected fault {rule.id}")

    def abort(self) -> None:
        """Cut the connection without a word (a fault); the read loop ends and cleans up."""
        transport = self.writer.transport
        if transport is not None:
            transport.abort()

    async def _teardown(self) -> None:
        for timer in self._expiries.values():
            timer.cancel()
        self._expiries.clear()
        await super()._teardown()
