"""The Device Shadow service of the stand-in, over MQTT and behind moto's REST API.

moto's own shadow model gets several AWS rules wrong (a `null` section is not cleared,
deleted named shadows stay listed, no MQTT at all), so the stand-in keeps shadows itself
and replaces the four iot-data backend methods moto's REST handlers call. Both paths end
in `_update` / `_delete`, so a REST change fires the same MQTT topics as a device's.
"""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from moto.core.exceptions import JsonRESTError
from moto.iotdata.responses import IoTDataPlaneResponse

from bridge.logging import get_logger
from bridge_sim.aws.shadow_doc import MAX_CLIENT_TOKEN, Shadow, ShadowError, parse_request

if TYPE_CHECKING:
    from bridge_sim.aws.moto_server import MotoServer

__all__ = ["ShadowService"]

Publish = Callable[[str, bytes], None]
_NAME = re.compile(r"^[a-zA-Z0-9:_-]{1,128}$")
_SHADOW_NAME = re.compile(r"^[a-zA-Z0-9:_-]{1,64}$")
_ERROR_TYPES = {
    400: "InvalidRequestException",
    404: "ResourceNotFoundException",
    409: "ConflictException",
    413: "RequestEntityTooLargeException",
    415: "UnsupportedDocumentEncodingException",
}
_MAX_PAGE = 100  # ListNamedShadowsForThing's pageSize range is 1-100
log = get_logger("sim.aws.shadows")


class _Answer:
    """What moto's response handlers expect back from a backend shadow call."""

    def __init__(self, body: dict[str, Any]) -> None:
        self.body = body

    def to_dict(self, include_delta: bool = True) -> dict[str, Any]:  # noqa: ARG002 - moto's signature
        return self.body

    def to_response_dict(self) -> dict[str, Any]:
        return self.body


def _rest_error(error: ShadowError) -> JsonRESTError:
    exc = JsonRESTError(_ERROR_TYPES.get(error.code, "InternalFailureException"), error.message)
    exc.code = error.code
    return exc


def _list_named_shadows_page(response: Any) -> str:
    """ListNamedShadowsForThing as AWS pages it: `pageSize` (1-100) names at a time, a
    `nextToken` while more remain, and the response's `timestamp` (moto returns every
    name at once and ignores both parameters)."""
    thing_name = response._get_param("thingName")
    size_text = response.querystring.get("pageSize", [str(_MAX_PAGE)])[0]
    try:
        size = int(size_text)
    except ValueError:
        size = 0
    if not 1 <= size <= _MAX_PAGE:
        raise _rest_error(ShadowError(400, f"pageSize must be between 1 and {_MAX_PAGE}"))
    names = response.iotdata_backend.list_named_shadows_for_thing(thing_name)  # sorted
    token = response.querystring.get("nextToken", [None])[0]
    if token:
        try:
            after = base64.urlsafe_b64decode(token.encode()).decode()
        except (ValueError, UnicodeDecodeError) as exc:
            raise _rest_error(ShadowError(400, "Invalid nextToken")) from exc
        names = [name for name in names if name > after]
    page = names[:size]
    body: dict[str, Any] = {"results": page, "timestamp": int(time.time())}
    if len(names) > size:
        body["nextToken"] = base64.urlsafe_b64encode(page[-1].encode()).decode()
    return json.dumps(body)


def _dumps(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


class ShadowService:
    """Classic and named shadows with AWS's MQTT topics, for devices and for REST callers."""

    SUBSCRIPTIONS = tuple(
        f"$aws/things/+/shadow/{infix}{op}"
        for infix in ("", "name/+/")
        for op in ("update", "get", "delete")
    )

    def __init__(self, *, moto: MotoServer, publish: Publish) -> None:
        self._moto = moto
        self._publish = publish
        self._shadows: dict[tuple[str, str | None], Shadow] = {}
        self._named: dict[str, set[str]] = {}  # thing -> named shadows ever created

    def install(self) -> None:
        """Take over moto's iot-data shadow calls."""
        backend = self._moto.iot_data
        backend.update_thing_shadow = self._rest_update
        backend.get_thing_shadow = self._rest_get
        backend.delete_thing_shadow = self._rest_delete
        backend.list_named_shadows_for_thing = self.named_shadows
        IoTDataPlaneResponse.list_named_shadows_for_thing = _list_named_shadows_page

    def named_shadows(self, thing_name: str) -> list[str]:
        """Names of the thing's named shadows that exist (deleted ones are not listed)."""
        with self._moto.lock:
            return sorted(
                name
                for name in self._named.get(thing_name, ())
                if not self._shadows[thing_name, name].deleted
            )

    def stored(self, thing_name: str, shadow_name: str | None = None) -> Shadow | None:
        """The live shadow, or None when there is none; read it holding the moto lock."""
        shadow = self._shadows.get((thing_name, shadow_name))
        return None if shadow is None or shadow.deleted else shadow

    def get(self, thing_name: str, shadow_name: str | None = None) -> dict[str, Any] | None:
        """The shadow document, or None when there is none."""
        with self._moto.lock:
            shadow = self._shadows.get((thing_name, shadow_name))
            return None if shadow is None or shadow.deleted else shadow.document()

    def apply_update(
        self, thing_name: str, shadow_name: str | None, request: dict[str, Any]
    ) -> None:
        """Update a shadow from the stand-in's own code (estate builders, tests)."""
        self._update(thing_name, shadow_name, parse_request(json.dumps(request)))

    async def handle(self, topic: str, payload: bytes) -> None:
        """Serve one request published by a device on a shadow topic."""
        parts = topic.split("/")
        # $aws/things/{thing}/shadow/{op}  or  $aws/things/{thing}/shadow/name/{shadow}/{op}
        thing, op = parts[2], parts[-1]
        shadow_name = parts[5] if len(parts) == 7 else None
        prefix = "/".join(parts[:-1])
        token: str | None = None
        try:
            self._check_names(thing, shadow_name)
            if op == "update":
                # A request refused for its content still names its token in the reply
                # (the SDK's V2 clients match replies by it and would wait forever).
                token = self._lenient_token(payload)
                request = parse_request(payload)
                self._update(thing, shadow_name, request)
                return
            token = self._token(payload)
            if op == "get":
                with self._moto.lock:
                    document = self._existing(thing, shadow_name).document(client_token=token)
                self._publish(f"{prefix}/get/accepted", _dumps(document))
            else:
                self._delete(thing, shadow_name, token)
        except ShadowError as error:
            log.info(
                "aws.shadow_rejected", thing=thing, op=op, code=error.code, reason=error.message
            )
            body: dict[str, Any] = {
                "code": error.code,
                "message": error.message,
                "timestamp": int(time.time()),
            }
            if token is not None:
                body["clientToken"] = token
            self._publish(f"{prefix}/{op}/rejected", _dumps(body))

    @staticmethod
    def _token(payload: bytes) -> str | None:
        if not payload.strip():
            return None
        try:
            body = json.loads(payload)
        except ValueError as exc:
            raise ShadowError(400, "Invalid JSON") from exc
        token = body.get("clientToken") if isinstance(body, dict) else None
        return token if isinstance(token, str) else None

    @staticmethod
    def _lenient_token(payload: bytes) -> str | None:
        """The request's clientToken if it can be read and is valid, else None."""
        try:
            body = json.loads(payload)
        except ValueError:
            return None
        token = body.get("clientToken") if isinstance(body, dict) else None
        if isinstance(token, str) and len(token.encode()) <= MAX_CLIENT_TOKEN:
            return token
        return None

    @staticmethod
    def _check_names(thing: str, shadow_name: str | None) -> None:
        if not _NAME.match(thing):
            raise ShadowError(400, "Invalid thing name")
        if shadow_name is not None and not _SHADOW_NAME.match(shadow_name):
            raise ShadowError(400, "Invalid shadow name")

    def _existing(self, thing: str, shadow_name: str | None) -> Shadow:
        shadow = self._shadows.get((thing, shadow_name))
        if shadow is None or shadow.deleted:
            raise ShadowError(404, f"No shadow exists with name: '{shadow_name or thing}'")
        return shadow

    def _topic(self, thing: str, shadow_name: str | None) -> str:
        base = f"$aws/things/{thing}/shadow"
        return f"{base}/name/{shadow_name}" if shadow_name else base

    def _update(
        self, thing: str, shadow_name: str | None, request: dict[str, Any]
    ) -> dict[str, Any]:
        with self._moto.lock:
            shadow = self._shadows.setdefault((thing, shadow_name), Shadow())
            if shadow_name is not None:
                self._named.setdefault(thing, set()).add(shadow_name)
            result = shadow.update(request)
            prefix = self._topic(thing, shadow_name)
            # Published under the lock so concurrent updates reach MQTT in version order.
            self._publish(f"{prefix}/update/accepted", _dumps(result.accepted))
            self._publish(f"{prefix}/update/documents", _dumps(result.documents))
            if result.delta is not None:
                self._publish(f"{prefix}/update/delta", _dumps(result.delta))
        return result.accepted

    def _delete(self, thing: str, shadow_name: str | None, token: str | None) -> dict[str, Any]:
        with self._moto.lock:
            answer = self._existing(thing, shadow_name).delete(client_token=token)
            self._publish(f"{self._topic(thing, shadow_name)}/delete/accepted", _dumps(answer))
        return answer

    # moto's REST handlers call these in its server threads.
    def _rest_update(self, thing_name: str, payload: Any, shadow_name: str | None) -> _Answer:
        try:
            self._check_names(thing_name, shadow_name)
            return _Answer(self._update(thing_name, shadow_name, parse_request(payload)))
        except ShadowError as error:
            raise _rest_error(error) from error

    def _rest_get(self, thing_name: str, shadow_name: str | None) -> _Answer:
        try:
            with self._moto.lock:
                return _Answer(self._existing(thing_name, shadow_name).document())
        except ShadowError as error:
            raise _rest_error(error) from error

    def _rest_delete(self, thing_name: str, shadow_name: str | None) -> _Answer:
        try:
            return _Answer(self._delete(thing_name, shadow_name, None))
        except ShadowError as error:
            raise _rest_error(error) from error
