"""Registry rules and registry events, driven through boto3 against the in-process moto."""

import json
from collections.abc import Iterator

import botocore.config
import botocore.exceptions
import pytest

from bridge_sim.aws.moto_server import MotoServer
from tests.standins import ControlPlane, control_plane

REGION = "eu-west-1"


@pytest.fixture
def moto() -> Iterator[ControlPlane]:
    with control_plane(REGION) as plane:
        yield plane


def client(server: MotoServer, service: str = "iot"):
    return ControlPlane(server, None, None).client(service)  # type: ignore[arg-type]


def test_thing_version_increments_and_expected_version_is_enforced(moto) -> None:
    server, captured = moto.moto, moto.captured
    iot = client(server)
    iot.create_thing(thingName="t1", attributePayload={"attributes": {"a": "1"}})
    assert iot.describe_thing(thingName="t1")["version"] == 1
    iot.update_thing(thingName="t1", attributePayload={"attributes": {"a": "2"}})
    iot.update_thing(
        thingName="t1",
        attributePayload={"attributes": {"b": "3"}, "merge": True},
        expectedVersion=2,
    )
    assert iot.describe_thing(thingName="t1")["version"] == 3
    with pytest.raises(botocore.exceptions.ClientError) as info:
        iot.update_thing(
            thingName="t1", attributePayload={"attributes": {"a": "x"}}, expectedVersion=1
        )
    assert info.value.response["Error"]["Code"] == "VersionConflictException"
    with pytest.raises(botocore.exceptions.ClientError):
        iot.delete_thing(thingName="t1", expectedVersion=2)
    assert iot.describe_thing(thingName="t1")["attributes"] == {"a": "2", "b": "3"}
    iot.delete_thing(thingName="t1", expectedVersion=3)
    events = [
        body for topic, body in captured.messages if topic.startswith("$aws/events/thing/t1/")
    ]
    assert [(e["operation"], e["versionNumber"]) for e in events] == [
        ("CREATED", 1),
        ("UPDATED", 2),
        ("UPDATED", 3),
        ("DELETED", 3),
    ]
    assert events[2]["attributes"] == {"a": "2", "b": "3"}
    assert {"eventId", "timestamp", "accountId", "thingId", "thingName"} <= events[0].keys()


def test_thing_type_events_and_associations(moto) -> None:
    server, captured = moto.moto, moto.captured
    iot = client(server)
    iot.create_thing_type(
        thingTypeName="sensor", thingTypeProperties={"searchableAttributes": ["model"]}
    )
    iot.create_thing_type(thingTypeName="gateway")
    iot.create_thing(thingName="t1", thingTypeName="sensor")
    iot.update_thing(thingName="t1", thingTypeName="gateway")
    iot.update_thing(thingName="t1", removeThingType=True)
    iot.deprecate_thing_type(thingTypeName="sensor")
    assert captured.last("$aws/events/thingType/sensor/created")["searchableAttributes"] == [
        "model"
    ]
    assert captured.last("$aws/events/thingType/sensor/updated")["isDeprecated"] is True
    associations = [
        (topic.rsplit("/", 1)[1], body["operation"])
        for topic, body in captured.messages
        if topic.startswith("$aws/events/thingTypeAssociation/thing/t1/")
    ]
    assert associations == [
        ("sensor", "CREATED"),
        ("sensor", "DELETED"),
        ("gateway", "CREATED"),
        ("gateway", "DELETED"),
    ]
    assert captured.last("$aws/events/thing/t1/updated")["thingTypeName"] is None


def test_group_hierarchy_and_membership_events(moto) -> None:
    server, captured = moto.moto, moto.captured
    iot = client(server)
    iot.create_thing_group(thingGroupName="USA")
    iot.create_thing_group(thingGroupName="NewYork", parentGroupName="USA")
    iot.create_thing_group(thingGroupName="Floor1", parentGroupName="NewYork")
    iot.create_thing(thingName="t1")
    iot.add_thing_to_thing_group(thingGroupName="Floor1", thingName="t1")
    iot.add_thing_to_thing_group(thingGroupName="Floor1", thingName="t1")  # no change, no event
    iot.update_thing_groups_for_thing(
        thingName="t1", thingGroupsToAdd=["USA"], thingGroupsToRemove=["Floor1"]
    )
    floor = captured.last("$aws/events/thingGroup/Floor1/created")
    assert floor["parentGroupName"] == "NewYork"
    assert [g["groupArn"].rsplit("/", 1)[1] for g in floor["rootToParentThingGroups"]] == [
        "USA",
        "NewYork",
    ]
    assert (
        "$aws/events/thingGroupHierarchy/thingGroup/NewYork/childThingGroup/Floor1/added"
        in captured.topics()
    )
    memberships = [
        t for t in captured.topics() if t.startswith("$aws/events/thingGroupMembership/")
    ]
    assert memberships == [
        "$aws/events/thingGroupMembership/thingGroup/Floor1/thing/t1/added",
        "$aws/events/thingGroupMembership/thingGroup/USA/thing/t1/added",
        "$aws/events/thingGroupMembership/thingGroup/Floor1/thing/t1/removed",
    ]
    body = captured.last("$aws/events/thingGroupMembership/thingGroup/USA/thing/t1/added")
    assert body["eventType"] == "THING_GROUP_MEMBERSHIP_EVENT"
    assert str(body["thingArn"]).endswith(":thing/t1")


def test_missing_parent_and_too_deep_hierarchy_are_refused(moto) -> None:
    server = moto.moto
    iot = client(server)
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.create_thing_group(thingGroupName="orphan", parentGroupName="nope")
    parent = None
    for depth in range(7):
        name = f"g{depth}"
        if parent:
            iot.create_thing_group(thingGroupName=name, parentGroupName=parent)
        else:
            iot.create_thing_group(thingGroupName=name)
        parent = name
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.create_thing_group(thingGroupName="g7", parentGroupName="g6")


def test_deleted_thing_leaves_its_groups(moto) -> None:
    server = moto.moto
    iot = client(server)
    iot.create_thing_group(thingGroupName="g")
    iot.create_thing(thingName="t1")
    iot.add_thing_to_thing_group(thingGroupName="g", thingName="t1")
    iot.delete_thing(thingName="t1")
    assert iot.list_things_in_thing_group(thingGroupName="g")["things"] == []


def test_shadow_rest_calls_fire_mqtt_topics(moto) -> None:
    server, captured = moto.moto, moto.captured
    iot, data = client(server), client(server, "iot-data")
    iot.create_thing(thingName="lamp")
    data.update_thing_shadow(
        thingName="lamp", payload=json.dumps({"state": {"desired": {"on": True}}})
    )
    data.update_thing_shadow(
        thingName="lamp", shadowName="cfg", payload=json.dumps({"state": {"reported": {"v": 1}}})
    )
    prefix = "$aws/things/lamp/shadow"
    assert captured.last(f"{prefix}/update/delta")["state"] == {"on": True}
    assert captured.last(f"{prefix}/update/documents")["current"]["version"] == 1
    assert captured.last(f"{prefix}/name/cfg/update/accepted")["state"] == {"reported": {"v": 1}}
    doc = json.loads(data.get_thing_shadow(thingName="lamp")["payload"].read())
    assert doc["state"]["delta"] == {"on": True}
    data.update_thing_shadow(thingName="lamp", payload=json.dumps({"state": {"desired": None}}))
    doc = json.loads(data.get_thing_shadow(thingName="lamp")["payload"].read())
    assert doc["state"] == {}
    assert doc["version"] == 2
    assert data.list_named_shadows_for_thing(thingName="lamp")["results"] == ["cfg"]
    data.delete_thing_shadow(thingName="lamp", shadowName="cfg")
    assert data.list_named_shadows_for_thing(thingName="lamp")["results"] == []
    assert captured.last(f"{prefix}/name/cfg/delete/accepted")["version"] == 1
    with pytest.raises(botocore.exceptions.ClientError) as info:
        data.get_thing_shadow(thingName="lamp", shadowName="cfg")
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    with pytest.raises(botocore.exceptions.ClientError) as info:
        data.update_thing_shadow(thingName="lamp", payload=b"{not json")
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_list_things_pages_through_every_thing_once(moto) -> None:
    iot = moto.client()
    iot.create_thing_type(thingTypeName="x")
    for i in range(130):
        iot.create_thing(thingName=f"t{i:03d}", **({"thingTypeName": "x"} if i % 2 else {}))
    names = [
        thing["thingName"]
        for page in iot.get_paginator("list_things").paginate(PaginationConfig={"PageSize": 25})
        for thing in page["things"]
    ]
    assert names == [f"t{i:03d}" for i in range(130)]
    typed = [
        thing["thingName"]
        for page in iot.get_paginator("list_things").paginate(
            thingTypeName="x", PaginationConfig={"PageSize": 20}
        )
        for thing in page["things"]
    ]
    assert typed == [f"t{i:03d}" for i in range(1, 130, 2)]
    iot.delete_thing(thingName="t005")
    assert len(iot.list_things(maxResults=200)["things"]) == 129


def test_attribute_limits_follow_the_thing_type(moto) -> None:
    iot = moto.client()
    iot.create_thing_type(thingTypeName="meter")
    four = {f"a{i}": "x" for i in range(4)}
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.create_thing(thingName="plain", attributePayload={"attributes": four})
    iot.create_thing(
        thingName="typed", thingTypeName="meter", attributePayload={"attributes": four}
    )
    iot.create_thing(thingName="small", attributePayload={"attributes": {"a": "1", "b": "2"}})
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.update_thing(
            thingName="small", attributePayload={"attributes": {"c": "3", "d": "4"}, "merge": True}
        )
    iot.update_thing(thingName="small", attributePayload={"attributes": {"c": "3"}, "merge": True})
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.update_thing(thingName="typed", removeThingType=True)
    fifty_one = {f"a{i}": "x" for i in range(51)}
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.update_thing(thingName="typed", attributePayload={"attributes": fifty_one})
    assert iot.describe_thing(thingName="small")["attributes"] == {"a": "1", "b": "2", "c": "3"}
