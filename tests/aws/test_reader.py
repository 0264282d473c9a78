"""AwsReader against the stand-in's control plane (moto in server mode with the glue)."""

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import boto3
import botocore.config
import pytest
from moto.core.exceptions import JsonRESTError
from pydantic import SecretStr

from bridge.aws.reader import AwsReader
from bridge.config import CloudSettings
from bridge.core.view import CLASSIC, DeviceView, ShadowView
from bridge.errors import SourceError
from bridge_sim.estate import EstateSpec, build_estate
from tests.standins import ControlPlane, control_plane

REGION = "ap-southeast-2"


@pytest.fixture
def plane() -> Iterator[ControlPlane]:
    with control_plane(REGION) as plane:
        yield plane


@pytest.fixture
async def reader(plane: ControlPlane) -> AsyncIterator[AwsReader]:
    async with AwsReader(cloud_for(plane), concurrency=4, rate_scale=0) as opened:
        yield opened


def cloud_for(plane: ControlPlane) -> CloudSettings:
    return CloudSettings(
        AWS_REGION=REGION,
        AWS_ENDPOINT_URL=plane.moto.endpoint_url,
        AWS_ACCESS_KEY_ID=SecretStr("testing"),
        AWS_SECRET_ACCESS_KEY=SecretStr("testing"),
    )


def clients(plane: ControlPlane) -> tuple[Any, Any]:
    kwargs: dict[str, Any] = {
        "endpoint_url": plane.moto.endpoint_url,
        "region_name": REGION,
        "aws_access_key_id": "testing",
        "aws_secret_access_key": "testing",
        "config": botocore.config.Config(retries={"max_attempts": 1}),
    }
    return boto3.client("iot", **kwargs), boto3.client("iot-data", **kwargs)


def read_with_boto3(plane: ControlPlane, name: str) -> DeviceView:
    """What the device looks like through boto3, call by call, with no bridge code."""
    iot, data = clients(plane)
    thing = iot.describe_thing(thingName=name)
    groups = iot.list_thing_groups_for_thing(thingName=name)["thingGroups"]
    shadows = {}
    named = data.list_named_shadows_for_thing(thingName=name)["results"]
    for shadow in [None, *named]:
        try:
            answer = data.get_thing_shadow(
                thingName=name, **({"shadowName": shadow} if shadow else {})
            )
        except data.exceptions.ResourceNotFoundException:
            continue
        document = json.loads(answer["payload"].read())
        state = document["state"]
        shadows[shadow or CLASSIC] = ShadowView(
            document["version"], state.get("desired", {}), state.get("reported", {})
        )
    return DeviceView(
        device_id=name,
        thing_version=thing["version"],
        thing_type=thing.get("thingTypeName"),
        attributes=thing["attributes"],
        groups=frozenset(g["groupName"] for g in groups),
        shadows=shadows,
    )


async def test_a_snapshot_of_an_estate_equals_what_boto3_reads(
    plane: ControlPlane, reader: AwsReader
) -> None:
    estate = build_estate(plane.moto, plane.shadows, EstateSpec(things=30, legacy_things=2))
    views = {view.device_id: view async for view in reader.snapshot()}
    assert views.keys() == estate.devices.keys()
    for name, view in views.items():
        assert view == await asyncio.to_thread(read_with_boto3, plane, name)
        assert view.groups == {estate.devices[name].site}
        assert CLASSIC in view.shadows
    assert any(len(view.shadows) > 1 for view in views.values()), "some have named shadows"
    assert any(view.thing_type == "legacy-sensor" for view in views.values())


async def test_read_device_sees_versions_groups_and_both_kinds_of_shadow(
    plane: ControlPlane, reader: AwsReader
) -> None:
    iot, data = clients(plane)
    iot.create_thing_type(thingTypeName="pump-type")
    iot.create_thing(
        thingName="pump-7",
        thingTypeName="pump-type",
        attributePayload={"attributes": {"model": "P7"}},
    )
    iot.update_thing(thingName="pump-7", attributePayload={"attributes": {"model": "P8"}})
    iot.create_thing_group(thingGroupName="site")
    iot.create_thing_group(thingGroupName="line", parentGroupName="site")
    iot.add_thing_to_thing_group(thingGroupName="line", thingName="pump-7")
    data.update_thing_shadow(
        thingName="pump-7",
        payload=json.dumps({"state": {"desired": {"rpm": 900}, "reported": {"rpm": 850}}}),
    )
    for shadow, body in (("config", {"mode": "eco"}), ("firmware", {"v": "2.1"})):
        data.update_thing_shadow(
            thingName="pump-7",
            shadowName=shadow,
            payload=json.dumps({"state": {"reported": body}}),
        )
    data.update_thing_shadow(
        thingName="pump-7", shadowName="config", payload=json.dumps({"state": {"desired": {}}})
    )
    data.delete_thing_shadow(thingName="pump-7", shadowName="firmware")

    view = await reader.read_device("pump-7")

    assert view == DeviceView(
        device_id="pump-7",
        thing_version=2,
        thing_type="pump-type",
        attributes={"model": "P8"},
        groups=frozenset({"line"}),  # direct membership only, not the parent "site"
        shadows={
            CLASSIC: ShadowView(1, {"rpm": 900}, {"rpm": 850}),
            "config": ShadowView(2, {}, {"mode": "eco"}),
        },
    )
    assert view == await asyncio.to_thread(read_with_boto3, plane, "pump-7")


async def test_a_thing_without_shadows_or_groups_and_a_missing_thing(
    plane: ControlPlane, reader: AwsReader
) -> None:
    iot, _ = clients(plane)
    iot.create_thing(thingName="bare")
    assert await reader.read_device("bare") == DeviceView("bare", thing_version=1)
    assert await reader.read_device("never-created") is None
    iot.delete_thing(thingName="bare")
    assert await reader.read_device("bare") is None


async def test_a_thing_deleted_while_it_is_read_is_none(
    plane: ControlPlane, reader: AwsReader
) -> None:
    iot, _ = clients(plane)
    iot.create_thing(thingName="fleeting")

    def delete_first(_call: object) -> None:
        plane.moto.iot.delete_thing(thing_name="fleeting")

    plane.moto.iot_hooks.before("list_thing_groups_for_thing", delete_first)
    assert await reader.read_device("fleeting") is None


async def test_dynamic_groups_are_not_static_memberships(
    plane: ControlPlane, reader: AwsReader
) -> None:
    iot, _ = clients(plane)
    iot.create_thing(thingName="meter-1")
    for group in ("static-1", "looks-dynamic"):
        iot.create_thing_group(thingGroupName=group)
        iot.add_thing_to_thing_group(thingGroupName=group, thingName="meter-1")
    # moto has no dynamic groups: give one the query string AWS returns for them.
    fake = plane.moto.iot.describe_thing_group("looks-dynamic")
    fake.to_dict = lambda original=fake.to_dict: {**original(), "queryString": "attributes.a:1"}
    view = await reader.read_device("meter-1")
    assert view is not None
    assert view.groups == {"static-1"}


async def test_groups_come_with_their_parents(plane: ControlPlane, reader: AwsReader) -> None:
    estate = build_estate(plane.moto, plane.shadows, EstateSpec(things=4, legacy_things=0))
    groups = await reader.read_groups()
    assert groups.keys() == estate.groups.keys()
    for name, path in estate.groups.items():
        assert groups[name] == (path[-2] if len(path) > 1 else None)
    assert groups["AMER"] is None
    assert groups["USA"] == "AMER"


async def test_reads_stay_within_the_concurrency(plane: ControlPlane) -> None:
    build_estate(plane.moto, plane.shadows, EstateSpec(things=24, legacy_things=0))
    in_flight = peak = 0
    async with AwsReader(cloud_for(plane), concurrency=3, rate_scale=0) as reader:
        # moto serves one backend call at a time, so count where the requests start.
        assert reader._apis is not None
        for api in reader._apis:
            original = api.call

            async def counted(operation: str, _original: Any = original, **kwargs: Any) -> Any:
                nonlocal in_flight, peak
                in_flight += 1
                peak = max(peak, in_flight)
                try:
                    await asyncio.sleep(0.005)  # long enough for the others to pile up
                    return await _original(operation, **kwargs)
                finally:
                    in_flight -= 1

            api.call = counted  # type: ignore[method-assign]
        views = [view async for view in reader.snapshot()]
    assert len(views) == 24
    assert peak == 3


async def test_leaving_a_snapshot_early_stops_its_reads(
    plane: ControlPlane, reader: AwsReader
) -> None:
    build_estate(plane.moto, plane.shadows, EstateSpec(things=20, legacy_things=0))
    snapshot = reader.snapshot()
    first = await anext(snapshot)
    assert isinstance(first, DeviceView)
    await snapshot.aclose()
    assert not [t for t in asyncio.all_tasks() if t.get_name() == "bridge[aws].snapshot"]


async def test_a_failing_read_fails_the_snapshot_rather_than_shortening_it(
    plane: ControlPlane, reader: AwsReader
) -> None:
    build_estate(plane.moto, plane.shadows, EstateSpec(things=6, legacy_things=0))

    def deny(_call: object) -> None:
        error = JsonRESTError("AccessDeniedException", "not allowed")
        error.code = 403
        raise error

    plane.moto.iot_data_hooks.before("list_named_shadows_for_thing", deny)
    with pytest.raises(SourceError, match="AccessDenied"):
        async for _ in reader.snapshot():
            pass
    with pytest.raises(SourceError) as failed:
        await reader.read_device("temperature-000000")
    assert failed.value.device_id == "temperature-000000"


def test_concurrency_must_be_positive(plane: ControlPlane) -> None:
    with pytest.raises(ValueError, match="concurrency"):
        AwsReader(cloud_for(plane), concurrency=0)
