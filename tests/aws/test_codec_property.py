"""The codec under random, truncated and wrongly typed messages: an event or MalformedEvent.

Whatever arrives on a subscribed topic, `decode` either returns an event whose fields have
the types the core relies on, or raises `MalformedEvent` (which the ingest dead-letters).
Anything else would stop the source's receive loop.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from bridge.aws.codec import MalformedEvent, decode

# Topic shapes of SUBSCRIPTIONS, with `{}` where a name goes.
_TOPICS = (
    "$aws/events/thing/{}/created",
    "$aws/events/thing/{}/updated",
    "$aws/events/thing/{}/deleted",
    "$aws/events/thingGroup/{}/created",
    "$aws/events/thingGroup/{}/deleted",
    "$aws/events/thingType/{}/updated",
    "$aws/events/thingGroupMembership/thingGroup/{}/thing/{}/added",
    "$aws/events/thingGroupMembership/thingGroup/{}/thing/{}/removed",
    "$aws/events/thingGroupHierarchy/thingGroup/{}/childThingGroup/{}/added",
    "$aws/events/thingTypeAssociation/thing/{}/{}",
    "$aws/events/thingTypeAssociation/thing/{}/thingType/{}/removed",
    "$aws/events/presence/connected/{}",
    "$aws/events/presence/{}/{}",
    "$aws/things/{}/shadow/update/documents",
    "$aws/things/{}/shadow/name/{}/update/documents",
    "$aws/things/{}/shadow/delete/accepted",
    "$aws/things/{}/shadow/name/{}/delete/accepted",
    "$aws/things/{}/shadow/{}",
    "$aws/events/{}",
    "{}",
)
_KEYS = (
    "thingName",
    "thingTypeName",
    "thingGroupName",
    "parentGroupName",
    "clientId",
    "operation",
    "versionNumber",
    "version",
    "timestamp",
    "attributes",
    "current",
    "previous",
    "state",
    "desired",
    "reported",
    "isDeprecated",
    "disconnectReason",
)

names = st.text(st.characters(blacklist_characters="/"), max_size=8) | st.sampled_from(
    ["m1", "site", "cfg", "connected", "disconnected", "thing", "thingType"]
)
_WORDS = (
    "$aws",
    "events",
    "things",
    "thing",
    "thingGroup",
    "thingType",
    "thingGroupMembership",
    "thingGroupHierarchy",
    "childThingGroup",
    "thingTypeAssociation",
    "presence",
    "connected",
    "shadow",
    "name",
    "update",
    "delete",
    "documents",
    "accepted",
    "added",
    "",
)
_PREFIXES = (
    "$aws/events",
    *(f"$aws/events/{kind}" for kind in _WORDS[3:11]),
    "$aws/things",
    "$aws/things/m1/shadow",
    "$aws/things/m1/shadow/name",
)
topics = (
    st.builds(
        lambda shape, parts: shape.format(*parts),
        st.sampled_from(_TOPICS),
        st.lists(names, min_size=2, max_size=2),
    )
    # Topics of every length from the words AWS uses, to reach each length check.
    | st.builds(
        lambda prefix, levels: "/".join([prefix, *levels]),
        st.sampled_from(_PREFIXES),
        st.lists(st.sampled_from(_WORDS) | names, max_size=5),
    )
    | st.text(max_size=60)
)

scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(_KEYS) | st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=12,
)
bodies = st.dictionaries(st.sampled_from(_KEYS), json_values, max_size=6)
documents = st.fixed_dictionaries(
    {"current": st.fixed_dictionaries({"state": json_values, "version": json_values})},
    optional={"timestamp": json_values, "previous": json_values},
)


def _encode(value: Any) -> bytes:
    return json.dumps(value).encode()


payloads = (
    bodies.map(_encode)
    | documents.map(_encode)
    | json_values.map(_encode)
    | st.binary(max_size=40)
    | st.builds(lambda b, cut: _encode(b)[:cut], bodies | documents, st.integers(0, 60))
)


def _conforms(value: Any, hint: Any) -> bool:
    """Whether `value` is of the (simple) annotated type `hint`."""
    if hint is Any:
        return True
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_conforms(value, arm) for arm in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if origin is dict:
        key_hint, value_hint = typing.get_args(hint)
        return isinstance(value, dict) and all(
            _conforms(k, key_hint) and _conforms(v, value_hint) for k, v in value.items()
        )
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint)


def assert_well_typed(event: Any) -> None:
    hints = typing.get_type_hints(type(event))
    for field in dataclasses.fields(event):
        value = getattr(event, field.name)
        assert _conforms(value, hints[field.name]), (field.name, value)


def _decodes_or_is_malformed(topic: str, payload: bytes) -> None:
    try:
        event = decode(topic, payload)
    except MalformedEvent as exc:
        error = exc
    else:
        assert_well_typed(event)
        return
    assert error.reason
    assert error.topic == topic


# Found by this property: names and versions of the wrong JSON type made it into events.
@example("$aws/events/thing/m1/updated", b'{"thingName": 1}')
@example("$aws/events/thing/m1/updated", b'{"thingTypeName": ["meter"]}')
@example("$aws/events/thingGroup/g/created", b'{"parentGroupName": {}}')
@example("$aws/events/presence/connected/m1", b'{"disconnectReason": 7}')
@example("$aws/things/m1/shadow/update/documents", b'{"current": {"state": {"desired": 1}}}')
@example("$aws/things/m1/shadow/update/documents", b'{"current": {"version": 1.5}}')
# Deeply nested JSON overflowed the parser's recursion (RecursionError).
@example("$aws/things/m1/shadow/update/documents", b"[" * 10_000)
# An integer longer than 4300 digits raises a plain ValueError, not JSONDecodeError.
@example("$aws/things/m1/shadow/update/documents", b'{"current": ' + b"9" * 5000 + b"}")
# NaN is not JSON and no twin can hold it; an empty thing name is no device id.
@example("$aws/things/m1/shadow/update/documents", b'{"current": {"version": NaN}}')
@example("$aws/things//shadow/update/documents", b'{"current": {"version": 1}}')
# Not UTF-8.
@example("$aws/things/m1/shadow/update/documents", b"\xff\xfe{}")
@given(topics, payloads)
def test_decode_gives_a_well_typed_event_or_malformed(topic: str, payload: bytes) -> None:
    _decodes_or_is_malformed(topic, payload)


@given(st.sampled_from(_TOPICS[:17]), st.lists(names, min_size=2, max_size=2), bodies)
def test_every_shape_of_topic_with_any_body(shape: str, parts: list[str], body: dict) -> None:
    _decodes_or_is_malformed(shape.format(*parts), _encode(body))


def test_every_topic_shape_cut_short_or_extended() -> None:
    # Truncated and extended topics, level by level: each length check is reached.
    # Found: "$aws/events/presence/connected" (no client id level) raised IndexError.
    for shape in _TOPICS:
        levels = shape.format("m1", "g").split("/")
        for cut in range(1, len(levels) + 3):
            topic = "/".join([*levels, "x", ""][:cut])
            for body in ({}, {"current": {"version": 1}, "version": 1}, {"thingName": "m1"}):
                _decodes_or_is_malformed(topic, _encode(body))


@pytest.mark.parametrize(
    ("topic", "payload", "reason"),
    [
        ("$aws/things/m1/shadow/update/documents", b"[" * 10_000, "payload is not JSON"),
        ("$aws/things/m1/shadow/update/documents", b'{"a": NaN}', "payload is not JSON"),
        ("$aws/events/thing/m1/updated", b'{"thingName": 1}', "thing name"),
        ("$aws/events/presence/connected", b"{}", "unexpected presence topic"),
        (
            "$aws/things/m1/shadow/update/documents",
            b'{"current": {"version": 2, "state": {"desired": 1}}}',
            "'current.state.desired' is not an object",
        ),
    ],
)
def test_rejections_say_why(topic: str, payload: bytes, reason: str) -> None:
    with pytest.raises(MalformedEvent) as caught:
        decode(topic, payload)
    assert reason in caught.value.reason
