"""Link frames on the device endpoint: `$cbs` put-token, and telemetry sender links.

A client attaches a sender link to `$cbs` and a receiver link from it, puts a token per
identity, then attaches one sender link per identity to
`/devices/{id}/messages/events` (or `/devices/{id}/modules/{mid}/messages/events`), which
only an identity authorized on this connection may do. Each message is settled once it is
in the event log: accepted, or rejected with an AMQP error condition (over the size
limit, over the D2C throttle for longer than `Limits.max_throttle_wait`, an injected
fault). A device may also attach a receiver link from `/devices/{id}/messages/devicebound`
for cloud-to-device messages (`DeviceAmqpEndpoint.send_c2d`): they go out unsettled,
as IoT Hub sends them, within the credit the device gave, and the device's outcome
(complete = accepted, reject, abandon) settles them; nothing is redelivered. Twin links
(`.../twin`, a sender and a receiver the SDK pairs) carry GET, PATCH `/properties/reported`
and PUT/DELETE `/notifications/twin/properties/desired` requests, answered on the receiver
with the request's correlation id and a `status` annotation (`version` after a patch);
desired patches come on the receiver without a correlation id. Method links
(`.../methods/devicebound`, also a pair) carry calls with the `IoThub-methodname`
application property and a correlation id, and replies with `IoThub-status`.
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bridge.logging import get_logger
from bridge_sim.iothub.amqp import frames
from bridge_sim.iothub.amqp.cbs import TOKEN_TYPES, CbsRefusal, parse_audience
from bridge_sim.iothub.errors import IoTHubError
from bridge_sim.iothub.eventhub import codec
from bridge_sim.iothub.eventhub.delivery import send_flow, send_message
from bridge_sim.iothub.eventhub.errors import LinkRefused, ProtocolError
from bridge_sim.iothub.eventhub.links import LinkHandler
from bridge_sim.iothub.eventhub.session import SESSION_WINDOW, RequestLink, ResponseLink
from bridge_sim.iothub.mqtt.state import ThrottledError
from bridge_sim.iothub.quotas import Operation
from bridge_sim.iothub.subscriptions import DesiredSubscription

if TYPE_CHECKING:
    from collections.abc import Callable

    from bridge_sim.iothub.amqp.connection import DeviceAmqpConnection
    from bridge_sim.iothub.eventhub.session import Session

__all__ = [
    "ENDPOINT_NAME",
    "C2DLink",
    "DeviceLinkHandler",
    "MethodRequestLink",
    "MethodResponseLink",
    "OutboundLink",
    "TelemetryLink",
    "TwinRequestLink",
    "TwinResponseLink",
    "condition_for",
]

ENDPOINT_NAME = "amqp"  # fault rules and stats: endpoint "amqp"
CBS_NODE = "$cbs"
UNAUTHORIZED = b"amqp:unauthorized-access"
_log = get_logger("sim.iothub.amqp")
_REQUEST_CREDIT = 100
_TELEMETRY_CREDIT = 100
_EVENTS = re.compile(
    r"^(?:amqps://[^/]+)?/devices/(?P<device>[^/]+)(?:/modules/(?P<module>[^/]+))?"
    r"/messages/events/?$"
)
_TWIN = re.compile(
    r"^(?:amqps://[^/]+)?/devices/(?P<device>[^/]+)(?:/modules/(?P<module>[^/]+))?/twin/?$"
)
_DESIRED_RESOURCE = "/notifications/twin/properties/desired"
_METHODS = re.compile(
    r"^(?:amqps://[^/]+)?/devices/(?P<device>[^/]+)(?:/modules/(?P<module>[^/]+))?"
    r"/methods/devicebound/?$"
)
METHOD_NAME_PROPERTY = "IoThub-methodname"
METHOD_STATUS_PROPERTY = "IoThub-status"
_DEVICEBOUND = re.compile(r"^(?:amqps://[^/]+)?/devices/(?P<device>[^/]+)/messages/devicebound/?$")
_SYSTEM = ("message_id", "user_id", "correlation_id", "content_type", "content_encoding")


def condition_for(status: int) -> bytes:
    """The AMQP error condition IoT Hub uses for what REST would answer with `status`."""
    if status in {401, 403}:
        return UNAUTHORIZED
    if status == 404:
        return b"amqp:not-found"
    if status == 429:
        return b"amqp:resource-limit-exceeded"
    if status == 413:
        return b"amqp:link:message-size-exceeded"
    return b"amqp:internal-error"


@dataclass
class TelemetryLink:
    """A client's sender link for one identity's device-to-cloud messages."""

    handle: int
    device_id: str
    module_id: str | None
    delivery_count: int = 0
    credit: int = 0
    pending: bytearray = field(default_factory=bytearray)
    pending_delivery_id: int | None = None
    pending_settled: bool = False

    @property
    def key(self) -> tuple[str, str | None]:
        return self.device_id, self.module_id


@dataclass
class OutboundLink:
    """A device's receiver link: we send, within the credit it gives."""

    handle: int
    device_id: str
    module_id: str | None = None
    delivery_count: int = 0
    credit: int = 0
    # Our delivery ids the device has not settled yet.
    unsettled: set[int] = field(default_factory=set)
    # Messages waiting for credit (a response may be ready before the link's first flow).
    waiting: list[bytes] = field(default_factory=list)

    @property
    def key(self) -> tuple[str, str | None]:
        return self.device_id, self.module_id


@dataclass
class C2DLink(OutboundLink):
    """A device's receiver link for cloud-to-device messages."""


@dataclass
class TwinResponseLink(OutboundLink):
    """A device's (or module's) receiver link on `.../twin`: responses and desired patches."""

    desired: DesiredSubscription | None = None


@dataclass
class MethodRequestLink(OutboundLink):
    """A device's (or module's) receiver link on `.../methods/devicebound`: method calls."""


@dataclass
class MethodResponseLink(TelemetryLink):
    """A device's (or module's) sender link on `.../methods/devicebound`: method replies."""


@dataclass
class TwinRequestLink(TelemetryLink):
    """A device's (or module's) sender link on `.../twin`: GET, PATCH, PUT, DELETE requests."""


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return codec.text(value) if isinstance(value, bytes | bytearray | str) else str(value)


def _body(message: Any) -> bytes:
    if message.data:
        return b"".join(bytes(part) for part in message.data)
    value = message.value
    if value is None:
        return b""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    return str(value).encode()


class DeviceLinkHandler(LinkHandler):
    """Handles the link frames of one device connection's sessions."""

    connection: DeviceAmqpConnection

    def __init__(self, connection: DeviceAmqpConnection) -> None:
        super().__init__(connection)
        self.connection = connection
        # Put-tokens received per `$cbs` request link, to keep giving it credit.
        self._requests: dict[int, int] = {}

    async def dispatch(self, code: int, session: Session, fields: list[Any]) -> None:
        if code == codec.Code.ATTACH:
            self._attach(session, codec.pad(fields, 14))
        elif code == codec.Code.FLOW:
            self._flow(session, codec.pad(fields, 11))
        elif code == codec.Code.TRANSFER:
            await self._transfer(session, fields)
        elif code == codec.Code.DETACH:
            self._detach(session, codec.pad(fields, 3))
        elif code == codec.Code.DISPOSITION:
            self._disposition(session, codec.pad(fields, 6))
        # Other dispositions: our replies go settled; the client's outcomes need no answer.

    def stop_session(self, session: Session) -> None:
        for link in list(session.links.values()):
            if isinstance(link, TelemetryLink | OutboundLink):
                self._link_gone(link)
        session.links.clear()

    def revoke(self, key: tuple[str, str | None], reason: str) -> None:
        """Detach every telemetry link of an identity, as IoT Hub does when its token lapses."""
        for session in self.connection.sessions.values():
            for handle, link in list(session.links.items()):
                if isinstance(link, TelemetryLink | OutboundLink) and link.key == key:
                    del session.links[handle]
                    self._link_gone(link)
                    error = codec.AmqpError(condition=UNAUTHORIZED, description=reason)
                    self.connection.send(
                        session.channel, codec.DetachFrame(handle=handle, closed=True, error=error)
                    )

    # -- attach / detach -----------------------------------------------------------------

    def _attach(self, session: Session, fields: list[Any]) -> None:
        handle, client_sends = int(fields[1]), not fields[2]
        source = codec.pad(fields[5] or [], 1)
        target = codec.pad(fields[6] or [], 1)
        if handle in session.links:
            raise ProtocolError(b"amqp:session:handle-in-use", f"handle {handle} in use")
        address = codec.text(target[0] if client_sends else source[0]) or ""
        if address == CBS_NODE:
            if client_sends:
                request_link = session.links[handle] = RequestLink(handle=handle, node=CBS_NODE)
                self._requests[id(request_link)] = int(fields[9] or 0)
                self._reply_attach(session, fields, we_send=False)
                send_flow(self.connection, session, handle, int(fields[9] or 0), _REQUEST_CREDIT)
            else:
                session.links[handle] = ResponseLink(handle=handle, node=CBS_NODE)
                self._reply_attach(session, fields, we_send=True)
            return
        twin = _TWIN.match(address)
        if twin is not None:
            self._attach_twin(session, fields, (twin["device"], twin["module"]), client_sends)
            return
        methods = _METHODS.match(address)
        if methods is not None:
            key = (methods["device"], methods["module"])
            self._attach_twin(session, fields, key, client_sends, methods=True)
            return
        devicebound = None if client_sends else _DEVICEBOUND.match(address)
        if devicebound is not None:
            self._attach_c2d(session, fields, devicebound["device"])
            return
        match = _EVENTS.match(address) if client_sends else None
        if match is None:
            self._refuse(session, fields, LinkRefused(f"This hub serves no link at {address!r}"))
            return
        key = (match["device"], match["module"])
        rule = self.connection.hub.faults.check(ENDPOINT_NAME, "attach")
        if rule is not None:
            refusal = LinkRefused(f"Injected fault {rule.id}", condition_for(rule.status))
            self._refuse(session, fields, refusal)
            return
        if key not in self.connection.grants:
            who = f"{key[0]}/{key[1]}" if key[1] else key[0]
            refusal = LinkRefused(f"Unauthorized: no valid token for {who}.", UNAUTHORIZED)
            self._refuse(session, fields, refusal)
            return
        link = TelemetryLink(handle=handle, device_id=key[0], module_id=key[1])
        session.links[handle] = link  # type: ignore[assignment]  # the Event Hubs union
        self._reply_attach(session, fields, we_send=False)
        link.delivery_count = int(fields[9] or 0)
        self._give_credit(session, link)
        self.connection.link_opened(link)

    def _attach_c2d(self, session: Session, fields: list[Any], device_id: str) -> None:
        if (device_id, None) not in self.connection.grants:
            refusal = LinkRefused(f"Unauthorized: no valid token for {device_id}.", UNAUTHORIZED)
            self._refuse(session, fields, refusal)
            return
        link = C2DLink(handle=int(fields[1]), device_id=device_id)
        session.links[link.handle] = link  # type: ignore[assignment]  # the Event Hubs union
        self._reply_attach(session, fields, we_send=True)
        self.connection.link_opened(link)

    def _link_gone(self, link: TelemetryLink | OutboundLink) -> None:
        if isinstance(link, TwinResponseLink) and link.desired is not None:
            link.desired.close()
            link.desired = None
        self.connection.link_closed(link)

    def _attach_twin(
        self,
        session: Session,
        fields: list[Any],
        key: tuple[str, str | None],
        client_sends: bool,
        *,
        methods: bool = False,
    ) -> None:
        """Attach a twin link pair's half, or (`methods`) a direct-method link pair's."""
        if key not in self.connection.grants:
            who = f"{key[0]}/{key[1]}" if key[1] else key[0]
            refusal = LinkRefused(f"Unauthorized: no valid token for {who}.", UNAUTHORIZED)
            self._refuse(session, fields, refusal)
            return
        handle = int(fields[1])
        if client_sends:
            kind = MethodResponseLink if methods else TwinRequestLink
            request = kind(handle=handle, device_id=key[0], module_id=key[1])
            session.links[handle] = request  # type: ignore[assignment]  # the Event Hubs union
            self._reply_attach(session, fields, we_send=False)
            request.delivery_count = int(fields[9] or 0)
            self._give_credit(session, request)
            self.connection.link_opened(request)
        else:
            outbound = MethodRequestLink if methods else TwinResponseLink
            response = outbound(handle=handle, device_id=key[0], module_id=key[1])
            session.links[handle] = response  # type: ignore[assignment]
            self._reply_attach(session, fields, we_send=True)
            self.connection.link_opened(response)

    def _twin_response_link(self, session: Session, key: tuple[str, str | None]) -> Any:
        for link in session.links.values():
            if isinstance(link, TwinResponseLink) and link.key == key:
                return link
        return None

    def _twin_request(
        self, session: Session, link: TwinRequestLink, data: bytes, delivery_id: int | None
    ) -> None:
        request = codec.decode_message(data)
        annotations = {codec.text(k): v for k, v in (request.message_annotations or {}).items()}
        operation = _text(annotations.get("operation"))
        resource = _text(annotations.get("resource"))
        correlation_id = request.properties.correlation_id if request.properties else None
        response = self._twin_response_link(session, link.key)
        status, body, version = 200, b"", None
        registry, quotas = self.connection.hub.registry, self.connection.hub.quotas
        try:
            if operation == "GET":
                _spend(quotas, Operation.TWIN_READ)
                body = json.dumps(registry.twin_properties(*link.key)).encode()
            elif operation == "PATCH" and resource == "/properties/reported":
                _spend(quotas, Operation.TWIN_UPDATE)
                patch = _json_body(request)
                version = registry.patch_reported(link.device_id, patch, link.module_id)
                status = 204
            elif resource == _DESIRED_RESOURCE and operation in {"PUT", "DELETE"}:
                if response is not None and response.desired is not None:
                    response.desired.close()
                    response.desired = None
                if response is not None and operation == "PUT":
                    response.desired = registry.subscribe_desired(
                        link.device_id,
                        link.module_id,
                        callback=self._desired_from_thread(session, response),
                    )
            else:
                _unsupported(operation, resource)
        except IoTHubError as error:
            status = error.status
            body = json.dumps({"errorCode": error.code, "message": error.message}).encode()
        if delivery_id is not None:
            self.connection.write(frames.accepted_disposition(session.channel, delivery_id))
        link.delivery_count += 1
        link.credit -= 1
        if link.credit <= _TELEMETRY_CREDIT // 2 and link.handle in session.links:
            self._give_credit(session, link)
        if response is None:
            return
        message_annotations = {"status": codec.typed("int", status)}
        if version is not None:
            message_annotations["version"] = codec.typed("long", version)
        reply = codec.Message(
            properties=codec.Properties(correlation_id=_text(correlation_id)),
            message_annotations=message_annotations,
            data=[body] if body else None,
        )
        self.send_c2d(session, response, codec.encode_message(reply))

    def _desired_from_thread(
        self, session: Session, link: TwinResponseLink
    ) -> Callable[[dict[str, Any]], None]:
        loop = asyncio.get_running_loop()

        def push(patch: dict[str, Any]) -> None:
            if link.handle not in session.links:
                return
            message = codec.Message(
                message_annotations={"version": codec.typed("long", int(patch["$version"]))},
                data=[json.dumps(patch).encode()],
            )
            # The transport sends without a drain; flow control is moot for one patch.
            self.send_c2d(session, link, codec.encode_message(message))

        def from_thread(patch: dict[str, Any]) -> None:
            # Registry writers run on any thread; publish on ours.
            loop.call_soon_threadsafe(push, patch)

        return from_thread

    def _method_response(
        self, session: Session, link: MethodResponseLink, data: bytes, delivery_id: int | None
    ) -> None:
        message = codec.decode_message(data)
        request_id = _text(message.properties.correlation_id) if message.properties else None
        properties = {codec.text(k): v for k, v in (message.application_properties or {}).items()}
        try:
            status = int(_text(properties.get(METHOD_STATUS_PROPERTY)) or 200)
        except ValueError:
            status = 200
        body = _body(message)
        try:
            payload = json.loads(body) if body else None
        except ValueError:
            payload = body.decode("utf-8", "replace")  # passed on as text, as over MQTT
        if delivery_id is not None:
            self.connection.write(frames.accepted_disposition(session.channel, delivery_id))
        link.delivery_count += 1
        link.credit -= 1
        if link.credit <= _TELEMETRY_CREDIT // 2 and link.handle in session.links:
            self._give_credit(session, link)
        self.connection.hub.resolve_method(request_id or "", status, payload)

    def method_link(self, key: tuple[str, str | None]) -> tuple[Session, MethodRequestLink] | None:
        """This connection's open method-request link for an identity, with its session."""
        for session in self.connection.sessions.values():
            for link in session.links.values():
                if isinstance(link, MethodRequestLink) and link.key == key:
                    return session, link
        return None

    def desired_subscribed(self, key: tuple[str, str | None]) -> bool:
        return any(
            isinstance(link, TwinResponseLink) and link.key == key and link.desired is not None
            for session in self.connection.sessions.values()
            for link in session.links.values()
        )

    def c2d_link(self, device_id: str) -> tuple[Session, C2DLink] | None:
        """This connection's open C2D link for a device, with its session."""
        for session in self.connection.sessions.values():
            for link in session.links.values():
                if isinstance(link, C2DLink) and link.device_id == device_id:
                    return session, link
        return None

    def send_c2d(self, session: Session, link: OutboundLink, payload: bytes) -> None:
        """Send one unsettled delivery, or keep it until the device gives credit."""
        if link.credit <= 0 or link.waiting:
            link.waiting.append(payload)
            return
        self._transfer_out(session, link, payload)

    def _transfer_out(self, session: Session, link: OutboundLink, payload: bytes) -> None:
        delivery_id = session.next_delivery_id
        session.next_delivery_id += 1
        self.connection.send(
            session.channel,
            codec.TransferFrame(
                handle=link.handle,
                delivery_id=delivery_id,
                delivery_tag=delivery_id.to_bytes(4, "big"),
                message_format=0,
                settled=False,
                more=False,
                rcv_settle_mode=None,
                state=None,
                resume=None,
                aborted=None,
                batchable=None,
                payload=payload,
            ),
        )
        session.next_transfer_id += 1
        session.remote_incoming_window -= 1
        link.delivery_count += 1
        link.credit -= 1
        link.unsettled.add(delivery_id)

    def _disposition(self, session: Session, fields: list[Any]) -> None:
        if fields[0]:  # role receiver: the device's outcome for our C2D deliveries
            first = int(fields[1])
            last = int(fields[2]) if fields[2] is not None else first
            for link in session.links.values():
                if isinstance(link, OutboundLink):
                    link.unsettled.difference_update(range(first, last + 1))

    def _detach(self, session: Session, fields: list[Any]) -> None:
        link = session.links.pop(int(fields[0]), None)
        if link is None:
            return  # refused or revoked, and detached then
        if isinstance(link, TelemetryLink | OutboundLink):
            self._link_gone(link)
        self.connection.send(
            session.channel,
            codec.DetachFrame(handle=link.handle, closed=bool(fields[1]), error=None),
        )

    def _flow(self, session: Session, fields: list[Any]) -> None:
        session.on_flow(fields[0], int(fields[1] or 0))
        link = session.links.get(fields[4]) if fields[4] is not None else None
        if isinstance(link, TelemetryLink) and fields[5] is not None:
            link.delivery_count = int(fields[5])  # the sender's count rules (it may skip ahead)
        if isinstance(link, OutboundLink) and fields[6] is not None:
            # The receiver's view: credit = its delivery-count + link-credit - ours.
            received = int(fields[5]) if fields[5] is not None else link.delivery_count
            link.credit = received + int(fields[6]) - link.delivery_count
            while link.waiting and link.credit > 0:
                self._transfer_out(session, link, link.waiting.pop(0))
        if fields[9]:  # echo
            if isinstance(link, TelemetryLink):
                send_flow(self.connection, session, link.handle, link.delivery_count, link.credit)
            else:
                send_flow(self.connection, session, None, 0, 0)

    def _give_credit(self, session: Session, link: TelemetryLink) -> None:
        link.credit = _TELEMETRY_CREDIT
        self.connection.write(
            frames.link_flow(
                session.channel,
                next_incoming_id=session.next_incoming_id,
                incoming_window=SESSION_WINDOW,
                next_outgoing_id=session.next_transfer_id,
                outgoing_window=SESSION_WINDOW,
                handle=link.handle,
                delivery_count=link.delivery_count,
                link_credit=link.credit,
            )
        )

    # -- transfers -----------------------------------------------------------------------

    async def _transfer(self, session: Session, fields: list[Any]) -> None:
        payload = bytes(fields[-1])
        fields = codec.pad(fields[:-1], 11)
        session.next_incoming_id += 1
        link = session.links.get(int(fields[0]))
        if link is None:
            return  # a transfer racing our detach of its link: it stays unsettled
        if not isinstance(link, TelemetryLink | RequestLink):
            raise ProtocolError(b"amqp:session:unattached-handle", f"no sender link {fields[0]}")
        if link.pending_delivery_id is None:
            link.pending_delivery_id = fields[1]
        if isinstance(link, TelemetryLink) and fields[4]:
            link.pending_settled = True
        if fields[10]:  # aborted: drop what came so far
            link.pending.clear()
            link.pending_delivery_id = None
            return
        link.pending.extend(payload)
        if fields[5]:  # more frames of this message follow
            return
        data, delivery_id = bytes(link.pending), link.pending_delivery_id
        link.pending.clear()
        link.pending_delivery_id = None
        if isinstance(link, RequestLink):
            self._put_token(session, data, delivery_id, settled=bool(fields[4]))
            count = self._requests[id(link)] = self._requests.get(id(link), 0) + 1
            if count % (_REQUEST_CREDIT // 2) == 0:  # a gateway puts a token per identity
                send_flow(self.connection, session, link.handle, count, _REQUEST_CREDIT)
        elif isinstance(link, MethodResponseLink):
            settled, link.pending_settled = link.pending_settled, False
            self._method_response(session, link, data, None if settled else delivery_id)
        elif isinstance(link, TwinRequestLink):
            settled, link.pending_settled = link.pending_settled, False
            self._twin_request(session, link, data, None if settled else delivery_id)
        else:
            settled, link.pending_settled = link.pending_settled, False
            await self._telemetry(session, link, data, delivery_id, settled=settled)
        await self.connection.drain()

    def _put_token(
        self, session: Session, data: bytes, delivery_id: int | None, *, settled: bool
    ) -> None:
        request = codec.decode_message(data)
        status, description = 200, "OK"
        try:
            self._authorize(request)
        except CbsRefusal as refusal:
            status, description = refusal.status, refusal.reason
            _log.info("sim.iothub.amqp_token_refused", status=status, reason=description)
        if not settled and delivery_id is not None:
            self.connection.write(frames.accepted_disposition(session.channel, delivery_id))
        request_id = request.properties.message_id if request.properties else None
        if isinstance(request_id, bytes):
            request_id = codec.text(request_id)  # the SDKs put strings and match strings
        reply = codec.Message(
            properties=codec.Properties(correlation_id=request_id),
            application_properties={
                "status-code": codec.typed("int", status),
                "status-description": codec.typed("string", description),
            },
        )
        response_link = session.response_link(CBS_NODE)
        if response_link is not None:
            send_message(self.connection, session, response_link, codec.encode_message(reply))

    def _authorize(self, request: Any) -> None:
        """Grant the identity a put-token names; CbsRefusal says why not."""
        properties = {codec.text(k): v for k, v in (request.application_properties or {}).items()}
        if codec.text(properties.get("operation")) != "put-token":
            raise CbsRefusal(400, "Unsupported $cbs operation.")
        if codec.text(properties.get("type")) not in TOKEN_TYPES:
            raise CbsRefusal(400, "Unsupported token type.")
        rule = self.connection.hub.faults.check(ENDPOINT_NAME, "cbs")
        if rule is not None:
            raise CbsRefusal(rule.status, f"Injected fault {rule.id}")
        device_id, module_id = parse_audience(
            codec.text(properties.get("name")) or "", self.connection.hub_hostname
        )
        self.connection.put_token(device_id, module_id, _text(request.value) or "")

    async def _telemetry(
        self,
        session: Session,
        link: TelemetryLink,
        data: bytes,
        delivery_id: int | None,
        *,
        settled: bool,
    ) -> None:
        connection, hub = self.connection, self.connection.hub
        delay = hub.faults.delay_for(ENDPOINT_NAME)
        if delay > 0:
            await asyncio.sleep(delay)
        error = await connection.deliver(link, data)
        link.delivery_count += 1
        link.credit -= 1
        if not settled and delivery_id is not None:
            if error is None:
                connection.write(frames.accepted_disposition(session.channel, delivery_id))
            else:
                connection.send(
                    session.channel,
                    codec.DispositionFrame(
                        role=True,
                        first=delivery_id,
                        last=delivery_id,
                        settled=True,
                        state=codec.Rejected(error=error),
                        batchable=None,
                    ),
                )
        if link.credit <= _TELEMETRY_CREDIT // 2 and link.handle in session.links:
            self._give_credit(session, link)


def _spend(quotas: Any, operation: Operation) -> None:
    if not quotas.try_acquire(operation):
        raise IoTHubError(429, "ThrottlingException", f"{operation.value} throttled")


def _json_body(request: Any) -> Any:
    try:
        return json.loads(_body(request))
    except ValueError as error:
        raise IoTHubError.argument_invalid("reported patch is not JSON") from error


def _unsupported(operation: str | None, resource: str | None) -> None:
    raise IoTHubError(400, "BadRequest", f"Unsupported twin operation {operation} {resource}")


def telemetry_fields(message: Any) -> dict[str, Any]:
    """EventLog.append keyword arguments for a device's AMQP message, as IoT Hub maps them."""
    fields: dict[str, Any] = {"body": _body(message)}
    properties = message.properties
    if properties is not None:
        for name in _SYSTEM:
            value = getattr(properties, name)
            if value is not None:
                fields[name] = _text(value)
    fields["properties"] = {
        codec.text(key) or "": _text(value) or ""
        for key, value in (message.application_properties or {}).items()
    }
    return fields


async def throttle(connection: DeviceAmqpConnection) -> Any:
    """Wait for a D2C token; an AMQP error when the wait runs out (the message is rejected)."""
    try:
        await connection.hub.acquire(Operation.D2C_SEND)
    except ThrottledError as error:
        return codec.AmqpError(condition=condition_for(429), description=str(error))
    return None
