"""The codec against what the AWS stand-in actually publishes, and against bad input."""

import json

import pytest

from bridge.aws.codec import SUBSCRIPTIONS, decode
from bridge.core.events import (
    GroupChanged,
    MembershipChanged,
    PresenceChanged,
    ShadowChanged,
    ThingChanged,
    ThingTypeChanged,
)
from bridge.errors import MalformedEvent
from tests.standins import control_plane


def _matches(topic: str, topic_filter: str) -> bool:
    t, f = topic.split("/"), topic_filter.split("/")
    for i, part in enumerate(f):
        if part == "#":
            return True
        if i >= len(t) or (part != "+" and part != t[i]):
            return False
    return len(t) == len(f)


def test_every_stand_in_event_decodes_and_is_subscribed() -> None:
    with control_plane("us-east-1") as plane:
        iot, data = plane.client(), plane.client("iot-data")
        iot.create_thing_type(thingTypeName="meter")
        iot.create_thing_group(thingGroupName="site")
        iot.create_thing_group(thingGroupName="floor", parentGroupName="site")
        iot.create_thing(
            thingName="m1", thingTypeName="meter", attributePayload={"attributes": {"k": "v"}}
        )
        iot.add_thing_to_thing_group(thingGroupName="floor", thingName="m1")
        data.update_thing_shadow(
            thingName="m1", payload=json.dumps({"state": {"desired": {"a": 1}}})
        )
        data.update_thing_shadow(
            thingName="m1", shadowName="cfg", payload=json.dumps({"state": {"reported": {"b": 2}}})
        )
        data.delete_thing_shadow(thingName="m1", shadowName="cfg")
        iot.update_thing(thingName="m1", removeThingType=True)
        iot.deprecate_thing_type(thingTypeName="meter")
        iot.delete_thing(thingName="m1")
        messages = [
            (topic, json.dumps(body).encode())
            for topic, body in plane.captured.messages
            if any(_matches(topic, f) for f in SUBSCRIPTIONS)
        ]
    events = [decode(topic, payload) for topic, payload in messages]
    things = [e for e in events if isinstance(e, ThingChanged) and e.version is not None]
    assert [(e.version, e.deleted) for e in things] == [(1, False), (2, False), (2, True)]
    assert things[0].attributes == {"k": "v"}
    assert things[0].thing_type == "meter"
    shadows = [e for e in events if isinstance(e, ShadowChanged)]
    assert [(s.shadow, s.version, s.deleted) for s in shadows] == [
        (None, 1, False),
        ("cfg", 1, False),
        ("cfg", 1, True),
    ]
    assert shadows[0].desired == {"a": 1}
    memberships = [e for e in events if isinstance(e, MembershipChanged)]
    assert [(m.device_id, m.group, m.added) for m in memberships] == [("m1", "floor", True)]
    assert any(
        isinstance(e, GroupChanged) and e.group == "floor" and e.parent == "site" for e in events
    )
    assert any(isinstance(e, ThingTypeChanged) and e.deprecated for e in events)


def test_presence_payload_from_the_broker_plugin() -> None:
    body = {
        "clientId": "m1",
        "timestamp": 1_700_000_000_000,
        "eventType": "disconnected",
        "sessionIdentifier": "s",
        "principalIdentifier": "abc",
        "versionNumber": 7,
        "clientInitiatedDisconnect": False,
        "disconnectReason": "CONNECTION_LOST",
    }
    event = decode("$aws/events/presence/disconnected/m1", json.dumps(body).encode())
    assert event == PresenceChanged(
        "m1", connected=False, version=7, reason="CONNECTION_LOST", at_ms=body["timestamp"]
    )


@pytest.mark.parametrize(
    ("topic", "payload", "reason"),
    [
        ("$aws/events/thing/t1/created", b"{not json", "not JSON"),
        ("$aws/events/thing/t1/created", b"[1]", "not a JSON object"),
        (
            "$aws/events/thing/t1/updated",
            b'{"versionNumber": "7"}',
            "'versionNumber' is not an integer",
        ),
        ("$aws/events/thing/t1/updated", b'{"attributes": {"a": 1}}', "'attributes' is not a map"),
        ("$aws/things/t1/shadow/update/documents", b'{"previous": {}}', "without 'current'"),
        ("$aws/things/t1/shadow/update/documents", b'{"current": {"state": {}}}', "'version'"),
        ("$aws/events/presence/reconnected/t1", b"{}", "unknown presence event"),
        ("$aws/events/thingGroupMembership/oops", b"{}", "unexpected membership topic"),
        ("dt/t1/telemetry", b"{}", "not a topic the bridge understands"),
    ],
)
def test_bad_messages_say_why(topic: str, payload: bytes, reason: str) -> None:
    with pytest.raises(MalformedEvent) as info:
        decode(topic, payload)
    assert reason in info.value.reason
    assert info.value.topic == topic
