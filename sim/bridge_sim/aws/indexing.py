"""Fleet indexing for the stand-in: the AWS_Things index and SearchIndex, as AWS answers them.

moto keeps the indexing configuration but its SearchIndex has no paging, ignores the
configuration and leaves out the shadow and connectivity data. Here:

- Get/UpdateIndexingConfiguration follow AWS's rules (see `index_config`).
- SearchIndex on `AWS_Things` pages with `maxResults` (1-100) and `nextToken`, in thing
  name order. The token is the last name returned, so a page costs what it returns, not a
  scan of the registry: the sorted names are rebuilt only after a thing is created or
  deleted.
- Each result carries thingName, thingId, thingTypeName, thingGroupNames (billing group
  included), attributes, `shadow` (a JSON string: the classic shadow's desired, reported,
  metadata, hasDelta and version when shadows are indexed, and indexed named shadows under
  `"name": {...}`) and `connectivity` when connectivity is indexed (from presence events;
  a thing never seen connected is `{"connected": false}`).
- With thing indexing OFF, SearchIndex answers ResourceNotFoundException, as AWS does.

Known differences from AWS: the index is never behind the registry (AWS's index is
eventually consistent), and the AWS_ThingGroups index is not searchable.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import json
from typing import TYPE_CHECKING, Any

from moto.core.responses import ActionResult
from moto.iot.exceptions import InvalidRequestException, ResourceNotFoundException
from moto.iot.responses import IoTResponse
from moto.utilities.utils import get_partition

from bridge_sim.aws.index_config import IndexingConfiguration
from bridge_sim.aws.index_query import parse_query
from bridge_sim.aws.shadow_doc import compute_delta

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from bridge_sim.aws.hooks import Call
    from bridge_sim.aws.moto_server import MotoServer
    from bridge_sim.aws.shadow_doc import Shadow
    from bridge_sim.aws.shadows import ShadowService

__all__ = ["MAX_RESULTS", "THING_INDEX", "FleetIndex"]

THING_INDEX = "AWS_Things"
MAX_RESULTS = 100


_TOKEN_PREFIX = b"after:"


def _encode(name: str) -> str:
    return base64.urlsafe_b64encode(_TOKEN_PREFIX + name.encode()).decode()


def _decode(token: str) -> str:
    """The thing name a token resumes after."""
    try:
        raw = base64.b64decode(token.encode(), altchars=b"-_", validate=True)
        if raw.startswith(_TOKEN_PREFIX):
            return raw[len(_TOKEN_PREFIX) :].decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        pass
    raise InvalidRequestException("The nextToken is not valid")


def _indexed(shadow: Shadow) -> dict[str, Any]:
    """One shadow as the index returns it."""
    doc: dict[str, Any] = {}
    if shadow.desired:
        doc["desired"] = shadow.desired
    if shadow.reported:
        doc["reported"] = shadow.reported
    metadata = {section: stamps for section, stamps in shadow.metadata.items() if stamps}
    if metadata:
        doc["metadata"] = metadata
    doc["hasDelta"] = bool(compute_delta(shadow.desired, shadow.reported))
    doc["version"] = shadow.version
    return doc


def _leaves(value: Any, path: list[str]) -> list[Any]:
    """The scalar values at `path` inside a JSON value (array elements each count)."""
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return []
        value = value[key]
    items = value if isinstance(value, list) else [value]
    return [item for item in items if item is not None and not isinstance(item, dict | list)]


class FleetIndex:
    """The AWS_Things index over the stand-in's registry, shadows and presence events."""

    PRESENCE = ("$aws/events/presence/connected/+", "$aws/events/presence/disconnected/+")

    def __init__(self, *, moto: MotoServer, shadows: ShadowService) -> None:
        self._moto = moto
        self._shadows = shadows
        self.configuration = IndexingConfiguration()
        self._names: list[str] | None = None  # sorted thing names; None after a change
        self._presence: dict[str, dict[str, Any]] = {}  # client id (= thing name) -> status
        self._patched: dict[str, Callable[..., Any] | None] = {}

    def install(self) -> None:
        """Take over moto's indexing calls on its backend and its SearchIndex handler."""
        backend = self._moto.iot
        backend.get_indexing_configuration = self.configuration.to_response
        backend.update_indexing_configuration = self.configuration.update
        for method in ("create_thing", "delete_thing"):
            self._moto.iot_hooks.after(method, self._forget_order)
        self._patched["search_index"] = IoTResponse.search_index
        index = self

        def search_index(response: Any) -> ActionResult:
            things, token = index.search(
                response._get_param("indexName"),
                response._get_param("queryString"),
                response._get_param("nextToken"),
                response._get_int_param("maxResults"),
            )
            body: dict[str, Any] = {"things": things, "thingGroups": []}
            if token is not None:
                body["nextToken"] = token
            return ActionResult(body)

        IoTResponse.search_index = search_index

    def uninstall(self) -> None:
        """Restore moto's handler (a class attribute, shared process-wide)."""
        for name, original in self._patched.items():
            setattr(IoTResponse, name, original)
        self._patched.clear()

    def search(
        self, index_name: str | None, query_string: str, token: str | None, max_results: int | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One page of SearchIndex: the matching thing documents and the next token."""
        self._check_index(index_name or THING_INDEX)
        limit = MAX_RESULTS if max_results is None else max_results
        if not 1 <= limit <= MAX_RESULTS:
            raise InvalidRequestException(f"maxResults must be between 1 and {MAX_RESULTS}")
        query = parse_query(query_string)
        after = _decode(token) if token else None
        with self._moto.lock:
            names = self._sorted_names()
            things = self._moto.iot.things
            prefix = self._arn_prefix()
            page: list[Any] = []
            position = bisect.bisect_right(names, after) if after is not None else 0
            for position in range(position, len(names)):  # noqa: B020 - resumes the scan
                thing = things.get(prefix + names[position])
                if thing is None:
                    continue
                if query.matches_everything or query.matches(self._fields(thing)):
                    page.append(thing)
                    if len(page) == limit:
                        break
            more = len(page) == limit and position + 1 < len(names)
            documents = [self._document(thing) for thing in page]
        return documents, _encode(page[-1].thing_name) if more else None

    async def presence(self, topic: str, payload: bytes) -> None:
        """Record a presence event (a glue route), for connectivity indexing."""
        try:
            event = json.loads(payload)
            client, timestamp = str(event["clientId"]), int(event["timestamp"])
        except (ValueError, KeyError, TypeError):
            return
        status: dict[str, Any] = {"connected": "/connected/" in topic, "timestamp": timestamp}
        if not status["connected"] and event.get("disconnectReason"):
            status["disconnectReason"] = event["disconnectReason"]
        with self._moto.lock:
            known = self._presence.get(client)
            # Presence events can arrive out of order: the newest one wins.
            if known is None or known["timestamp"] <= timestamp:
                self._presence[client] = status

    # -- the index -------------------------------------------------------------------------

    def _check_index(self, name: str) -> None:
        if name != THING_INDEX:
            raise ResourceNotFoundException(f"Index {name} does not exist")
        if self.configuration.thing_mode == "OFF":
            raise ResourceNotFoundException(
                f"Index {THING_INDEX} does not exist. "
                "Please enable index by calling UpdateIndexingConfiguration"
            )

    def _forget_order(self, _call: Call) -> None:
        self._names = None

    def _sorted_names(self) -> list[str]:
        if self._names is None:
            self._names = sorted(thing.thing_name for thing in self._moto.iot.things.values())
        return self._names

    def _arn_prefix(self) -> str:
        backend = self._moto.iot
        partition = get_partition(backend.region_name)
        return f"arn:{partition}:iot:{backend.region_name}:{backend.account_id}:thing/"

    def _group_names(self, thing: Any) -> list[str]:
        names = [
            group.thing_group_name
            for group in self._moto.iot.thing_groups.values()
            if thing.arn in group.things
        ]
        if thing.billing_group_name:
            names.append(thing.billing_group_name)
        return names

    def _shadow_document(self, thing_name: str) -> dict[str, Any]:
        doc: dict[str, Any] = {}
        if self.configuration.shadows_indexed:
            classic = self._shadows.stored(thing_name)
            if classic is not None:
                doc.update(_indexed(classic))
        named = {}
        for name in self.configuration.named_shadows:
            shadow = self._shadows.stored(thing_name, name)
            if shadow is not None:
                named[name] = _indexed(shadow)
        if named:
            doc["name"] = named
        return doc

    def _connectivity(self, thing_name: str) -> dict[str, Any]:
        return dict(self._presence.get(thing_name) or {"connected": False})

    def _document(self, thing: Any) -> dict[str, Any]:
        doc: dict[str, Any] = {"thingName": thing.thing_name, "thingId": thing.thing_id}
        if thing.thing_type is not None:
            doc["thingTypeName"] = thing.thing_type.thing_type_name
        groups = self._group_names(thing)
        if groups:
            doc["thingGroupNames"] = groups
        if thing.attributes:
            doc["attributes"] = dict(thing.attributes)
        shadow = self._shadow_document(thing.thing_name)
        if shadow:
            doc["shadow"] = json.dumps(shadow, separators=(",", ":"))
        if self.configuration.connectivity_indexed:
            doc["connectivity"] = self._connectivity(thing.thing_name)
        return doc

    def _fields(self, thing: Any) -> Callable[[str], Iterable[object]]:
        """What a query term sees of one thing, field by field."""

        def values(field: str) -> Iterable[object]:
            if field == "thingName":
                return [thing.thing_name]
            if field == "thingId":
                return [thing.thing_id]
            if field == "thingTypeName":
                return [thing.thing_type.thing_type_name] if thing.thing_type else []
            if field == "thingGroupNames":
                return self._group_names(thing)
            head, _, rest = field.partition(".")
            if head == "attributes" and rest:
                value = thing.attributes.get(rest)
                return [value] if value is not None else []
            if head == "shadow" and rest:
                return self._shadow_values(thing.thing_name, rest.split("."))
            if head == "connectivity" and rest and self.configuration.connectivity_indexed:
                return _leaves(self._connectivity(thing.thing_name), [rest])
            return []

        return values

    def _shadow_values(self, thing_name: str, path: list[str]) -> list[Any]:
        doc = self._shadow_document(thing_name)
        for shadow in [doc, *doc.get("name", {}).values()]:
            if "desired" in shadow or "reported" in shadow:
                # Indexed, hence searchable, though not returned: the delta.
                shadow["delta"] = compute_delta(
                    shadow.get("desired", {}), shadow.get("reported", {})
                )
            shadow.pop("version", None)  # versions are returned but not searchable (AWS)
        return _leaves(doc, path)
