"""Fuzz the AWS event and shadow codec: any topic and payload give an event or MalformedEvent.

The first input byte picks a topic shape, the bytes up to the first newline fill its name
levels, the rest is the payload. A decoded event must also be well typed.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from bridge.aws.codec import MalformedEvent, decode
from bridge.core.events import GroupChanged, ThingTypeChanged

_TOPICS = (
    "$aws/events/thing/{}/updated",
    "$aws/events/thingGroup/{}/created",
    "$aws/events/thingType/{}/updated",
    "$aws/events/thingGroupMembership/thingGroup/{}/thing/{}/added",
    "$aws/events/thingGroupHierarchy/thingGroup/{}/childThingGroup/{}/added",
    "$aws/events/thingTypeAssociation/thing/{}/{}",
    "$aws/events/presence/connected/{}",
    "$aws/things/{}/shadow/update/documents",
    "$aws/things/{}/shadow/name/{}/update/documents",
    "$aws/things/{}/shadow/delete/accepted",
    "$aws/things/{}/shadow/name/{}/delete/accepted",
    "{}",
)


def _split(data: bytes) -> tuple[str, bytes]:
    if not data:
        return "", b""
    shape = _TOPICS[data[0] % len(_TOPICS)]
    names, _, payload = data[1:].partition(b"\n")
    parts = names.decode("utf-8", "replace").split("|")
    return shape.format(*[*parts, "m1", "m1"][:2]), payload


def test_one_input(data: bytes) -> None:
    topic, payload = _split(data)
    try:
        event = decode(topic, payload)
    except MalformedEvent as exc:
        if not exc.reason:
            raise AssertionError("a MalformedEvent without a reason") from exc
        return
    name = event.group if isinstance(event, GroupChanged) else None
    if isinstance(event, ThingTypeChanged):
        name = event.thing_type
    elif not isinstance(event, GroupChanged):
        name = event.device_id
    if not isinstance(name, str) or not name:
        raise AssertionError(f"decoded an event without a name: {event!r}")


SEEDS = (
    b"\x00m1\n" + json.dumps({"thingName": "m1", "versionNumber": 2, "attributes": {}}).encode(),
    b"\x07m1\n" + json.dumps({"current": {"version": 3, "state": {"desired": {"a": 1}}}}).encode(),
    b"\x08m1|cfg\n" + json.dumps({"current": {"version": 1, "state": {}}, "timestamp": 1}).encode(),
    b"\x09m1\n" + json.dumps({"version": 4}).encode(),
    b"\x03g|m1\n" + json.dumps({"operation": "ADDED", "timestamp": 1}).encode(),
    b"\x06m1\n" + json.dumps({"clientId": "m1", "timestamp": 1}).encode(),
    b"\x01g\n" + json.dumps({"thingGroupName": "g", "parentGroupName": "p"}).encode(),
)

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from fuzz._harness import fuzz

    fuzz("aws_codec", test_one_input, SEEDS)
