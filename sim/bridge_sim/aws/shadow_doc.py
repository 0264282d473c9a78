"""AWS IoT Device Shadow documents: the service's merge, delta, version and error rules.

Pure data and rules, no I/O. Follows the AWS IoT developer guide (device-shadow-document,
device-shadow-data-flow): updates merge field by field, `null` deletes a field, empty
sections disappear, arrays are values, `delta` holds desired fields that differ from
reported, the version increases on every accepted update and continues after a delete.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "MAX_CLIENT_TOKEN",
    "MAX_DEPTH",
    "MAX_STATE_BYTES",
    "Shadow",
    "ShadowError",
    "ShadowUpdate",
    "compute_delta",
    "parse_request",
]

MAX_STATE_BYTES = 8 * 1024  # desired + reported, metadata excluded
MAX_DEPTH = 6
MAX_CLIENT_TOKEN = 64
SECTIONS = ("desired", "reported")


class ShadowError(Exception):
    """Raised when the shadow service rejects a request; carries AWS's code and message."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class ShadowUpdate:
    """What one accepted update produced: the documents and messages AWS publishes."""

    accepted: dict[str, Any]
    documents: dict[str, Any]
    delta: dict[str, Any] | None


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    return 0


def _merge(target: dict[str, Any], patch: dict[str, Any]) -> None:
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict):
            current = target.get(key)
            if not isinstance(current, dict):
                current = {}
            _merge(current, value)
            if current:
                target[key] = current
            else:
                target.pop(key, None)
        else:
            target[key] = value


def _stamp(patch: dict[str, Any], metadata: dict[str, Any], ts: int) -> None:
    """Record `ts` for every leaf the patch touched; drop metadata of deleted fields."""
    for key, value in patch.items():
        if value is None:
            metadata.pop(key, None)
        elif isinstance(value, dict):
            child = metadata.get(key)
            if not isinstance(child, dict) or "timestamp" in child:
                child = {}
            _stamp(value, child, ts)
            if child:
                metadata[key] = child
            else:
                metadata.pop(key, None)
        elif isinstance(value, list):
            metadata[key] = [{"timestamp": ts} for _ in value]
        else:
            metadata[key] = {"timestamp": ts}


def _request_metadata(patch: dict[str, Any], ts: int) -> dict[str, Any]:
    metadata: dict[str, Any] = {}
    for key, value in patch.items():
        if isinstance(value, dict):
            metadata[key] = _request_metadata(value, ts)
        elif isinstance(value, list):
            metadata[key] = [{"timestamp": ts} for _ in value]
        else:
            metadata[key] = {"timestamp": ts}
    return metadata


def compute_delta(desired: dict[str, Any], reported: dict[str, Any]) -> dict[str, Any]:
    """Desired fields whose value differs from reported, recursing into objects."""
    delta: dict[str, Any] = {}
    for key, want in desired.items():
        have = reported.get(key)
        if isinstance(want, dict) and isinstance(have, dict):
            nested = compute_delta(want, have)
            if nested:
                delta[key] = nested
        elif want != have:
            delta[key] = want
    return delta


def _pick(metadata: dict[str, Any], shape: dict[str, Any]) -> dict[str, Any]:
    picked: dict[str, Any] = {}
    for key, value in shape.items():
        meta = metadata.get(key)
        if isinstance(value, dict) and isinstance(meta, dict) and "timestamp" not in meta:
            picked[key] = _pick(meta, value)
        elif meta is not None:
            picked[key] = meta
    return picked


def parse_request(payload: bytes | str) -> dict[str, Any]:
    """Validate an update request document the way the shadow service does."""
    size = len(payload.encode() if isinstance(payload, str) else payload)
    try:
        text = payload.decode("utf-8") if isinstance(payload, bytes) else payload
    except UnicodeDecodeError as exc:
        raise ShadowError(
            415, "Unsupported documented encoding; supported encoding is UTF-8"
        ) from exc
    try:
        request = json.loads(text)
    except ValueError as exc:
        raise ShadowError(400, "Invalid JSON") from exc
    if not isinstance(request, dict):
        raise ShadowError(400, "Invalid JSON")
    token = request.get("clientToken")
    # "A client token that is longer than 64 bytes" is refused: bytes, not characters.
    if token is not None and (not isinstance(token, str) or len(token.encode()) > MAX_CLIENT_TOKEN):
        raise ShadowError(400, "Invalid clientToken")
    if "state" not in request:
        raise ShadowError(400, "Missing required node: state")
    state = request["state"]
    if state is not None and not isinstance(state, dict):
        raise ShadowError(400, "State node must be an object")
    for key, section in (state or {}).items():
        if key not in SECTIONS:
            raise ShadowError(400, f"State contains an invalid node: '{key}'")
        if section is not None and not isinstance(section, dict):
            raise ShadowError(400, f"{key.capitalize()} node must be an object")
        if _depth(section) > MAX_DEPTH:
            raise ShadowError(
                400, f"JSON contains too many levels of nesting; maximum is {MAX_DEPTH}"
            )
    version = request.get("version")
    if version is not None and (not isinstance(version, int) or isinstance(version, bool)):
        raise ShadowError(400, "Invalid version")
    if size > 128 * 1024:
        raise ShadowError(413, "The payload exceeds the maximum size allowed")
    return request


@dataclass
class Shadow:
    """One classic or named shadow, including a deleted one (whose version lives on)."""

    desired: dict[str, Any] = field(default_factory=dict)
    reported: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, dict[str, Any]] = field(
        default_factory=lambda: {"desired": {}, "reported": {}}
    )
    version: int = 0
    timestamp: int = 0
    deleted: bool = True

    def state(self, *, include_delta: bool = True) -> dict[str, Any]:
        """The `state` object of a GET response or a documents message."""
        state: dict[str, Any] = {}
        if self.desired:
            state["desired"] = self.desired
        if self.reported:
            state["reported"] = self.reported
        if include_delta:
            delta = compute_delta(self.desired, self.reported)
            if delta:
                state["delta"] = delta
        return state

    def _metadata(self) -> dict[str, Any]:
        return {k: v for k, v in self.metadata.items() if v}

    def document(self, *, client_token: str | None = None) -> dict[str, Any]:
        """The GET response document."""
        if self.deleted:
            raise ShadowError(404, "No shadow exists with name: ''")
        doc: dict[str, Any] = {
            "state": self.state(),
            "metadata": self._metadata(),
            "version": self.version,
            "timestamp": self.timestamp,
        }
        if client_token is not None:
            doc["clientToken"] = client_token
        return doc

    def _snapshot(self) -> dict[str, Any]:
        return {
            "state": json.loads(json.dumps(self.state(include_delta=False))),
            "metadata": json.loads(json.dumps(self._metadata())),
            "version": self.version,
        }

    def update(self, request: dict[str, Any], *, now: float | None = None) -> ShadowUpdate:
        """Apply a validated update request; raise ShadowError when AWS would reject it."""
        ts = int(now if now is not None else time.time())
        expected = request.get("version")
        if expected is not None and (self.deleted or expected != self.version):
            raise ShadowError(409, "Version conflict")
        previous = None if self.deleted else self._snapshot()
        state = request["state"] or {}
        desired, reported = dict(self.desired), dict(self.reported)
        metadata = json.loads(json.dumps(self.metadata))
        if request["state"] is None:
            desired, reported, metadata = {}, {}, {"desired": {}, "reported": {}}
        for name, target in (("desired", desired), ("reported", reported)):
            if name not in state:
                continue
            patch = state[name]
            if patch is None:  # {"desired": null} clears the whole section
                target.clear()
                metadata[name] = {}
                continue
            _merge(target, patch)
            _stamp(patch, metadata[name], ts)
        size = len(json.dumps({"desired": desired, "reported": reported}, separators=(",", ":")))
        if size > MAX_STATE_BYTES:
            raise ShadowError(413, "The payload exceeds the maximum size allowed")
        self.desired, self.reported, self.metadata = desired, reported, metadata
        self.version += 1
        self.timestamp = ts
        self.deleted = False
        token = request.get("clientToken")
        accepted: dict[str, Any] = {
            "state": state if request["state"] is not None else None,
            "metadata": {k: _request_metadata(v, ts) for k, v in state.items() if v is not None},
            "version": self.version,
            "timestamp": ts,
        }
        documents: dict[str, Any] = {"current": self._snapshot(), "timestamp": ts}
        if previous is not None:
            documents["previous"] = previous
        delta_msg = None
        delta = compute_delta(self.desired, self.reported)
        if state.get("desired") and delta:
            delta_msg = {
                "version": self.version,
                "timestamp": ts,
                "state": delta,
                "metadata": _pick(self.metadata["desired"], delta),
            }
        if token is not None:
            for message in (accepted, documents, delta_msg):
                if message is not None:
                    message["clientToken"] = token
        return ShadowUpdate(accepted=accepted, documents=documents, delta=delta_msg)

    def delete(
        self, *, client_token: str | None = None, now: float | None = None
    ) -> dict[str, Any]:
        """Delete the shadow; the version carries on for the next update."""
        if self.deleted:
            raise ShadowError(404, "No shadow exists with name: ''")
        self.desired, self.reported = {}, {}
        self.metadata = {"desired": {}, "reported": {}}
        self.deleted = True
        answer: dict[str, Any] = {"version": self.version, "timestamp": int(now or time.time())}
        if client_token is not None:
            answer["clientToken"] = client_token
        return answer
