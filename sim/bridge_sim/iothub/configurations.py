"""Automatic device management configurations (`IoTHubConfigurationManager`).

`PUT /configurations/{id}` creates (no If-Match) or updates (If-Match `"*"` or the etag) a
configuration; `GET /configurations/{id}`, `GET /configurations?top=n`, `DELETE
/configurations/{id}` and `POST /configurations/testQueries` complete the API, as
azure-iot-hub's generated `ConfigurationOperations` calls them. Following Microsoft's
automatic device management documentation: the id is at most 128 lowercase characters
without spaces or `& ^ [ ] { } \\ | " < > /`; the content is device or module twin desired
properties (`properties.desired...`) and cannot change after creation (only the target
condition, priority, labels and metrics can); a standard hub holds at most 100.

Each read computes the system metrics as IoT Hub reports them: `targetedCount` is the
number of twins the target condition selects; `appliedCount` those for which this
configuration has the highest priority among the ones targeting them (the most recently
created wins a tie). Creating or updating a configuration writes its device or module
content into the desired properties of the twins it applies to at once (IoT Hub does it
within minutes, and again as twins come into the target later; this emulator does not
re-evaluate on twin changes). IoT Edge `modulesContent` is stored but not applied.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import re
import threading
from typing import TYPE_CHECKING, Any

from bridge_sim.iothub.errors import IoTHubError
from bridge_sim.iothub.identity import format_time
from bridge_sim.iothub.query import QueryError, parse_query

if TYPE_CHECKING:
    from bridge_sim.iothub.registry import Registry

__all__ = ["MAX_CONFIGURATIONS", "Configurations"]

MAX_CONFIGURATIONS = 100
_ID = re.compile(r"^[^A-Z\s&^\[\]{}\\|\"<>/]{1,128}$")
_CONTENT_KEYS = ("deviceContent", "modulesContent", "moduleContent")
_UPDATABLE = ("targetCondition", "priority", "labels", "metrics")


def _not_found(configuration_id: str) -> IoTHubError:
    return IoTHubError(
        404, "ConfigurationNotFound", f"Configuration {configuration_id} does not exist"
    )


def _target_query(condition: str, modules: bool) -> str:
    source = "devices.modules" if modules else "devices"
    condition = condition.strip()
    where = "" if condition in {"", "*"} else f" WHERE {condition}"
    return f"SELECT * FROM {source}{where}"  # noqa: S608 - IoT Hub query text, no database


class Configurations:
    """The hub's configurations, thread-safe (the REST server runs handlers on its loop)."""

    def __init__(self, registry: Registry) -> None:
        self._registry = registry
        self._lock = threading.Lock()
        self._items: dict[str, dict[str, Any]] = {}
        self._version = 0

    def reset(self) -> None:
        with self._lock:
            self._items.clear()

    def _etag(self) -> str:
        self._version += 1
        return base64.b64encode(str(self._version).encode()).decode()

    def put(self, configuration_id: str, body: dict[str, Any], if_match: str | None) -> Any:
        _check(configuration_id, body)
        now = format_time(dt.datetime.now(dt.UTC))
        with self._lock:
            current = self._items.get(configuration_id)
            if if_match is None:
                if current is not None:
                    raise IoTHubError(
                        409,
                        "ConfigurationAlreadyExists",
                        f"Configuration {configuration_id} already exists",
                    )
                if len(self._items) >= MAX_CONFIGURATIONS:
                    raise IoTHubError(
                        400,
                        "TooManyConfigurations",
                        f"A hub holds at most {MAX_CONFIGURATIONS} configurations",
                    )
                stored = {
                    "id": configuration_id,
                    "schemaVersion": "1.0",
                    "labels": body.get("labels") or {},
                    "content": _content(body),
                    "targetCondition": body.get("targetCondition") or "",
                    "createdTimeUtc": now,
                    "lastUpdatedTimeUtc": now,
                    "priority": body.get("priority") or 0,
                    "metrics": {"queries": dict((body.get("metrics") or {}).get("queries") or {})},
                    "etag": self._etag(),
                }
                self._items[configuration_id] = stored
            else:
                if current is None:
                    raise _not_found(configuration_id)
                etag = if_match.strip('"')
                if etag != "*" and etag != current["etag"]:
                    raise IoTHubError(
                        412, "PreconditionFailed", "The configuration's etag does not match"
                    )
                if body.get("content") is not None and _content(body) != current["content"]:
                    raise IoTHubError(
                        400,
                        "ArgumentInvalid",
                        "The content of a configuration cannot be updated",
                    )
                for name in _UPDATABLE:
                    if name in body and body[name] is not None:
                        value = body[name]
                        if name == "metrics":
                            value = {"queries": dict(value.get("queries") or {})}
                        current[name] = value
                current["lastUpdatedTimeUtc"] = now
                current["etag"] = self._etag()
            items = list(self._items.values())
            stored = dict(self._items[configuration_id])
        self._apply(stored, items)
        return self.get(configuration_id)

    def _apply(self, item: dict[str, Any], items: list[dict[str, Any]]) -> None:
        content = item["content"]
        section = content.get("deviceContent") or content.get("moduleContent")
        if not section:
            return
        desired: dict[str, Any] = {}
        for key, value in section.items():
            path = key.split(".")[2:]  # after "properties.desired"
            if not path:
                if isinstance(value, dict):
                    desired.update(value)
                continue
            node = desired
            for name in path[:-1]:
                node = node.setdefault(name, {})
            node[path[-1]] = value
        for device_id, module_id in sorted(self._applied(item, items), key=str):
            with contextlib.suppress(IoTHubError):
                self._registry.update_twin(
                    device_id, {"properties": {"desired": desired}}, None, module_id
                )

    def get(self, configuration_id: str) -> dict[str, Any]:
        with self._lock:
            stored = self._items.get(configuration_id)
            if stored is None:
                raise _not_found(configuration_id)
            others = list(self._items.values())
            document = dict(stored)
        return self._with_metrics(document, others)

    def all(self, top: int | None = None) -> list[dict[str, Any]]:
        with self._lock:
            items = list(self._items.values())
        documents = [self._with_metrics(dict(item), items) for item in items]
        return documents if top is None else documents[:top]

    def delete(self, configuration_id: str, if_match: str | None) -> None:
        with self._lock:
            current = self._items.get(configuration_id)
            if current is None:
                raise _not_found(configuration_id)
            etag = (if_match or "*").strip('"')
            if etag != "*" and etag != current["etag"]:
                raise IoTHubError(
                    412, "PreconditionFailed", "The configuration's etag does not match"
                )
            del self._items[configuration_id]

    def test_queries(self, body: dict[str, Any]) -> dict[str, Any]:
        """`POST /configurations/testQueries`: the errors of a target condition and metrics."""
        condition = body.get("targetCondition") or ""
        condition_error = ""
        try:
            parse_query(_target_query(condition, modules=False))
        except QueryError as error:
            condition_error = str(error)
        metric_errors = {}
        for name, query in (body.get("customMetricQueries") or {}).items():
            try:
                parse_query(str(query))
            except QueryError as error:
                metric_errors[name] = str(error)
        return {"targetConditionError": condition_error, "customMetricQueryErrors": metric_errors}

    # -- metrics -------------------------------------------------------------------------

    def _targets(self, item: dict[str, Any]) -> set[tuple[str, str | None]]:
        modules = "deviceContent" not in item["content"]
        try:
            rows = self._registry.query(_target_query(item["targetCondition"], modules))
        except QueryError:
            return set()
        return {(row["deviceId"], row.get("moduleId")) for row in rows}

    def _applied(
        self, document: dict[str, Any], items: list[dict[str, Any]]
    ) -> set[tuple[str, str | None]]:
        applied = self._targets(document)
        rank = (document["priority"], document["createdTimeUtc"])
        for other in items:
            if other["id"] == document["id"] or (other["priority"], other["createdTimeUtc"]) < rank:
                continue
            same_kind = ("deviceContent" in other["content"]) == (
                "deviceContent" in document["content"]
            )
            if same_kind:
                applied -= self._targets(other)
        return applied

    def _with_metrics(
        self, document: dict[str, Any], items: list[dict[str, Any]]
    ) -> dict[str, Any]:
        targets = self._targets(document)
        applied = self._applied(document, items)
        condition = document["targetCondition"] or "*"
        # IoT Hub query text, no database.
        applied_query = (
            "select deviceId from devices where "  # noqa: S608
            f"configurations.[[{document['id']}]].status = 'Applied'"
        )
        document["systemMetrics"] = {
            "results": {"targetedCount": len(targets), "appliedCount": len(applied)},
            "queries": {
                "targetedCount": f"select deviceId from devices where {condition}",  # noqa: S608
                "appliedCount": applied_query,
            },
        }
        results = {}
        for name, query in document["metrics"]["queries"].items():
            try:
                results[name] = len(self._registry.query(str(query)))
            except QueryError:
                results[name] = 0
        document["metrics"] = {"results": results, "queries": dict(document["metrics"]["queries"])}
        return document


def _content(body: dict[str, Any]) -> dict[str, Any]:
    content = body.get("content") or {}
    return {key: content[key] for key in _CONTENT_KEYS if content.get(key)}


def _check(configuration_id: str, body: dict[str, Any]) -> None:
    if not _ID.match(configuration_id):
        raise IoTHubError(
            400,
            "ArgumentInvalid",
            "A configuration id is 1 to 128 lowercase characters without spaces or "
            '& ^ [ ] { } \\ | " < > /',
        )
    if body.get("id") not in {None, configuration_id}:
        raise IoTHubError(400, "ArgumentInvalid", "The body's id is not the one in the URL")
    content = body.get("content")
    if content is not None and not isinstance(content, dict):
        raise IoTHubError(400, "ArgumentInvalid", "content must be a JSON object")
    kinds = [key for key in _CONTENT_KEYS if (content or {}).get(key)]
    if len(kinds) > 1:
        raise IoTHubError(
            400, "ArgumentInvalid", "A configuration has device content or module content"
        )
    for kind in kinds:
        assert content is not None
        section = content[kind]
        if not isinstance(section, dict):
            raise IoTHubError(400, "ArgumentInvalid", f"{kind} must be a JSON object")
        if kind == "deviceContent" and any(
            not key.startswith("properties.desired") for key in section
        ):
            raise IoTHubError(
                400,
                "ArgumentInvalid",
                "Device content may only set properties.desired paths",
            )
    priority = body.get("priority")
    if priority is not None and (
        not isinstance(priority, int) or isinstance(priority, bool) or priority < 0
    ):
        raise IoTHubError(400, "ArgumentInvalid", "priority must be a non-negative integer")
