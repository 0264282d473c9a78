"""Fleet indexing in the stand-in, through boto3: configuration, SearchIndex paging and queries."""

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import botocore.config
import pytest
from botocore.exceptions import ClientError

from bridge_sim.aws.standin import AwsStandIn
from tests.aws_devices import TIMEOUT, connect_device, register_thing
from tests.standins import ControlPlane, control_plane

SHADOWS = {
    "thingIndexingMode": "REGISTRY_AND_SHADOW",
    "namedShadowIndexingMode": "ON",
    "filter": {"namedShadowNames": ["config"]},
}


@pytest.fixture
def plane() -> Iterator[ControlPlane]:
    with control_plane("eu-west-1") as plane:
        yield plane


@pytest.fixture
def iot(plane: ControlPlane) -> Any:
    return plane.client("iot")


def error_code(info: pytest.ExceptionInfo[ClientError]) -> str:
    return str(info.value.response["Error"]["Code"])


def small_fleet(plane: ControlPlane) -> None:
    iot, data = plane.client("iot"), plane.client("iot-data")
    iot.create_thing_type(thingTypeName="lamp")
    iot.create_thing_group(thingGroupName="Floor-1")
    for i in range(5):
        iot.create_thing(
            thingName=f"lamp-{i}",
            thingTypeName="lamp",
            attributePayload={"attributes": {"model": f"L{i % 2}", "watts": str(10 * i)}},
        )
        state = {"desired": {"level": i}, "reported": {"level": 0, "on": i % 2 == 0}}
        data.update_thing_shadow(thingName=f"lamp-{i}", payload=json.dumps({"state": state}))
    iot.add_thing_to_thing_group(thingGroupName="Floor-1", thingName="lamp-1")
    for shadow in ("config", "diag"):
        data.update_thing_shadow(
            thingName="lamp-1",
            shadowName=shadow,
            payload=json.dumps({"state": {"desired": {"mode": "Eco"}}}),
        )
    iot.create_thing(thingName="switch-0")


def names(iot: Any, query: str) -> list[str]:
    return [t["thingName"] for t in iot.search_index(queryString=query)["things"]]


def test_search_fails_as_on_aws_until_thing_indexing_is_on(iot: Any) -> None:
    config = iot.get_indexing_configuration()
    assert config["thingIndexingConfiguration"]["thingIndexingMode"] == "OFF"
    with pytest.raises(ClientError) as info:
        iot.search_index(queryString="thingName:*")
    assert error_code(info) == "ResourceNotFoundException"
    assert "UpdateIndexingConfiguration" in str(info.value)


def test_configuration_round_trips_and_impossible_ones_are_refused(iot: Any) -> None:
    iot.update_indexing_configuration(
        thingIndexingConfiguration={**SHADOWS, "thingConnectivityIndexingMode": "STATUS"}
    )
    thing = iot.get_indexing_configuration()["thingIndexingConfiguration"]
    assert thing["thingIndexingMode"] == "REGISTRY_AND_SHADOW"
    assert thing["filter"]["namedShadowNames"] == ["config"]
    assert thing["thingConnectivityIndexingMode"] == "STATUS"
    assert {"name": "shadow.hasDelta", "type": "Boolean"} in thing["managedFields"]
    for refused in (
        {"thingIndexingMode": "OFF", "thingConnectivityIndexingMode": "STATUS"},
        {"thingIndexingMode": "OFF", "namedShadowIndexingMode": "ON"},
        {"thingIndexingMode": "EVERYTHING"},
        {
            "thingIndexingMode": "REGISTRY_AND_SHADOW",
            "namedShadowIndexingMode": "ON",
            "filter": {"namedShadowNames": [f"s{i}" for i in range(11)]},
        },
    ):
        with pytest.raises(ClientError) as info:
            iot.update_indexing_configuration(thingIndexingConfiguration=refused)
        assert error_code(info) == "InvalidRequestException"
    iot.update_indexing_configuration(thingIndexingConfiguration={"thingIndexingMode": "OFF"})
    thing = iot.get_indexing_configuration()["thingIndexingConfiguration"]
    assert thing["namedShadowIndexingMode"] == "OFF", "an update replaces the whole section"


def test_results_carry_registry_shadows_and_indexed_named_shadows(
    plane: ControlPlane, iot: Any
) -> None:
    small_fleet(plane)
    iot.update_indexing_configuration(thingIndexingConfiguration=SHADOWS)
    (lamp,) = iot.search_index(queryString="thingName:lamp-1")["things"]
    described = iot.describe_thing(thingName="lamp-1")
    assert lamp["thingId"] == described["thingId"]
    assert lamp["thingTypeName"] == "lamp"
    assert lamp["thingGroupNames"] == ["Floor-1"]
    assert lamp["attributes"] == {"model": "L1", "watts": "10"}
    shadow = json.loads(lamp["shadow"])
    assert shadow["desired"] == {"level": 1}
    assert shadow["reported"] == {"level": 0, "on": False}
    assert set(shadow["metadata"]["reported"]) == {"level", "on"}
    assert (shadow["version"], shadow["hasDelta"]) == (1, True)
    assert list(shadow["name"]) == ["config"], "only named shadows in the filter"
    assert shadow["name"]["config"]["desired"] == {"mode": "Eco"}
    assert "connectivity" not in lamp
    (switch,) = iot.search_index(queryString="thingName:switch-0")["things"]
    assert "shadow" not in switch
    iot.update_indexing_configuration(thingIndexingConfiguration={"thingIndexingMode": "REGISTRY"})
    (lamp,) = iot.search_index(queryString="thingName:lamp-1")["things"]
    assert "shadow" not in lamp


def test_pages_resume_after_the_last_name_even_as_the_registry_changes(
    plane: ControlPlane, iot: Any
) -> None:
    backend = plane.moto.iot
    for i in range(0, 500, 2):
        backend.create_thing(thing_name=f"t-{i:03d}", thing_type_name=None, attribute_payload=None)
    iot.update_indexing_configuration(thingIndexingConfiguration={"thingIndexingMode": "REGISTRY"})
    first = iot.search_index(queryString="thingName:*", maxResults=100)
    assert [t["thingName"] for t in first["things"]] == [f"t-{i:03d}" for i in range(0, 200, 2)]
    iot.create_thing(thingName="t-201")  # after the first page: it will be seen
    iot.create_thing(thingName="t-001")  # before it: it will not
    iot.delete_thing(thingName="t-202")
    seen = [t["thingName"] for t in first["things"]]
    token = first["nextToken"]
    while token:
        page = iot.search_index(queryString="thingName:*", maxResults=100, nextToken=token)
        seen += [t["thingName"] for t in page["things"]]
        token = page.get("nextToken")
    assert len(seen) == len(set(seen)) == 250
    assert "t-201" in seen
    assert "t-001" not in seen
    assert "t-202" not in seen
    assert seen == sorted(seen)


def test_page_size_and_token_are_checked(plane: ControlPlane, iot: Any) -> None:
    small_fleet(plane)
    iot.update_indexing_configuration(thingIndexingConfiguration={"thingIndexingMode": "REGISTRY"})
    with pytest.raises(ClientError) as info:
        iot.search_index(queryString="thingName:*", maxResults=101)
    assert error_code(info) == "InvalidRequestException"
    with pytest.raises(ClientError) as info:
        iot.search_index(queryString="thingName:*", nextToken="%%%")
    assert error_code(info) == "InvalidRequestException"
    with pytest.raises(ClientError) as info:
        iot.search_index(indexName="AWS_Nothing", queryString="thingName:*")
    assert error_code(info) == "ResourceNotFoundException"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("thingName:lamp-*", ["lamp-0", "lamp-1", "lamp-2", "lamp-3", "lamp-4"]),
        ("thingName:LAMP-?", ["lamp-0", "lamp-1", "lamp-2", "lamp-3", "lamp-4"]),
        ("thingName:*-0", ["lamp-0", "switch-0"]),
        ("attributes.model:L1", ["lamp-1", "lamp-3"]),
        ("thingTypeName:lamp attributes.model:L0", ["lamp-0", "lamp-2", "lamp-4"]),
        ("attributes.model:L0 AND NOT thingName:lamp-0", ["lamp-2", "lamp-4"]),
        ("attributes.model:L0 -thingName:lamp-4", ["lamp-0", "lamp-2"]),
        ("thingName:lamp-0 OR thingGroupNames:Floor-1", ["lamp-0", "lamp-1"]),
        ("(thingName:lamp-0 OR thingName:lamp-3) AND attributes.model:L1", ["lamp-3"]),
        ("shadow.desired.level:3", ["lamp-3"]),
        ("shadow.reported.on:true", ["lamp-0", "lamp-2", "lamp-4"]),
        ("shadow.delta.level:2", ["lamp-2"]),
        ("shadow.hasDelta:false", ["lamp-0"]),
        ("shadow.name.config.desired.mode:eco", ["lamp-1"]),
        ("shadow.name.diag.desired.mode:eco", []),
        ("shadow.version:1", []),
    ],
)
def test_queries(plane: ControlPlane, iot: Any, query: str, expected: list[str]) -> None:
    small_fleet(plane)
    iot.update_indexing_configuration(thingIndexingConfiguration=SHADOWS)
    assert names(iot, query) == expected


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("lamp", "terms without a field"),
        ('thingName:"lamp 1"', "phrases"),
        ("attributes.watts:[10 TO 20]", "range searches"),
        ("thingName:(lamp-1 OR lamp-2)", "field grouping"),
        ("thingName:lamp,switch", "special characters"),
        ("thingName:*1 OR thingTypeName:*p", "Only one term"),
        (" ".join(f"thingName:t{i}" for i in range(13)), "at most 12 terms"),
        ("thingName:a AND", "ends unexpectedly"),
        ("(thingName:a", "Unbalanced"),
    ],
)
def test_unsupported_queries_are_refused_clearly(
    plane: ControlPlane, iot: Any, query: str, reason: str
) -> None:
    small_fleet(plane)
    iot.update_indexing_configuration(thingIndexingConfiguration=SHADOWS)
    with pytest.raises(ClientError) as info:
        iot.search_index(queryString=query)
    assert error_code(info) == "InvalidQueryException"
    assert reason in str(info.value)


async def test_connectivity_follows_presence_events(plane: ControlPlane, iot: Any) -> None:
    iot.create_thing(thingName="lamp-9")
    iot.update_indexing_configuration(
        thingIndexingConfiguration={
            "thingIndexingMode": "REGISTRY",
            "thingConnectivityIndexingMode": "STATUS",
        }
    )
    assert names(iot, "connectivity.connected:false") == ["lamp-9"]

    async def presence(kind: str, timestamp: int, **extra: Any) -> None:
        event = {"clientId": "lamp-9", "timestamp": timestamp, "eventType": kind, **extra}
        await plane.index.presence(
            f"$aws/events/presence/{kind}/lamp-9", json.dumps(event).encode()
        )

    await presence("connected", 1000)
    await presence("disconnected", 900, disconnectReason="CONNECTION_LOST")  # late, older
    (lamp,) = iot.search_index(queryString="connectivity.connected:true")["things"]
    assert lamp["connectivity"]["connected"] is True
    assert lamp["connectivity"]["timestamp"] == 1000
    await presence("disconnected", 2000, disconnectReason="CLIENT_INITIATED_DISCONNECT")
    (lamp,) = iot.search_index(queryString="thingName:lamp-9")["things"]
    assert lamp["connectivity"] == {
        "connected": False,
        "timestamp": 2000,
        "disconnectReason": "CLIENT_INITIATED_DISCONNECT",
    }


async def test_a_device_connecting_to_the_broker_is_indexed_as_connected(tmp_path: Path) -> None:
    async with AwsStandIn(workdir=tmp_path / "aws", region="eu-west-1") as aws:
        env = aws.env()
        iot = boto3.client(
            "iot",
            endpoint_url=env["AWS_ENDPOINT_URL"],
            region_name=env["AWS_REGION"],
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
            config=botocore.config.Config(retries={"max_attempts": 1}),
        )
        thing = await asyncio.to_thread(register_thing, iot, "lamp-7", "eu-west-1")
        iot.update_indexing_configuration(
            thingIndexingConfiguration={
                "thingIndexingMode": "REGISTRY",
                "thingConnectivityIndexingMode": "STATUS",
            }
        )

        async def connectivity() -> dict[str, Any]:
            (found,) = (await asyncio.to_thread(iot.search_index, queryString="thingName:lamp-7"))[
                "things"
            ]
            return dict(found["connectivity"])

        assert (await connectivity())["connected"] is False
        device = await asyncio.to_thread(connect_device, aws, thing)
        async with asyncio.timeout(TIMEOUT):
            while not (await connectivity())["connected"]:
                await asyncio.sleep(0.05)
        await asyncio.to_thread(device.stop)
        async with asyncio.timeout(TIMEOUT):
            while (status := await connectivity())["connected"]:
                await asyncio.sleep(0.05)
        assert status["timestamp"] > 0
