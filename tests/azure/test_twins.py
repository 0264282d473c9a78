"""Twins written by the client, read back through Microsoft's azure-iot-hub."""

from __future__ import annotations

import asyncio

import pytest

from bridge.azure import DeviceIdentity, NotFound, PreconditionFailed


@pytest.fixture
async def device(service):
    await service.create_or_update_device(DeviceIdentity("thing-1"))
    return "thing-1"


async def test_replace_twin_is_exactly_what_the_sdk_reads(service, rm, device):
    tags = {"aws": {"thingType": "sensor", "attributes": {"site": "north"}}}
    desired = {"shadow": {"led": "on", "interval": 30}, "named": {"config": {"a": [1, 2]}}}

    twin = await service.replace_twin(device, tags, desired)

    seen = await asyncio.to_thread(rm.get_twin, device)
    assert seen.tags == tags
    assert {k: v for k, v in seen.properties.desired.items() if not k.startswith("$")} == desired
    assert seen.etag == twin.etag
    assert seen.properties.desired["$version"] == twin.desired_version
    assert (twin.tags, twin.desired) == (tags, desired)


async def test_replace_twin_removes_keys_left_out(service, rm, device):
    first = await service.replace_twin(device, {"a": 1, "b": 2}, {"x": 1, "y": {"z": 2}})

    second = await service.replace_twin(device, {"b": 3}, {"y": {"w": 4}})

    seen = await asyncio.to_thread(rm.get_twin, device)
    assert seen.tags == {"b": 3}
    assert {k: v for k, v in seen.properties.desired.items() if not k.startswith("$")} == {
        "y": {"w": 4}
    }
    assert second.desired_version > first.desired_version
    assert second.version > first.version
    assert second.etag != first.etag


async def test_replace_twin_with_a_stale_etag_is_refused(service, rm, device):
    first = await service.replace_twin(device, {"v": 1}, {})
    current = await service.replace_twin(device, {"v": 2}, {}, etag=first.etag)

    with pytest.raises(PreconditionFailed) as refused:
        await service.replace_twin(device, {"v": 3}, {}, etag=first.etag)

    assert refused.value.status == 412
    assert (await asyncio.to_thread(rm.get_twin, device)).tags == {"v": 2}
    assert (await service.get_twin(device)).etag == current.etag


async def test_update_twin_merges_and_null_deletes(service, rm, device):
    await service.replace_twin(device, {"a": 1, "b": 2}, {"x": {"y": 1, "z": 2}})

    patched = await service.update_twin(
        device, tags={"a": None, "c": 3}, desired={"x": {"z": None}}
    )

    seen = await asyncio.to_thread(rm.get_twin, device)
    assert seen.tags == {"b": 2, "c": 3} == patched.tags
    assert seen.properties.desired["x"] == {"y": 1} == patched.desired["x"]


async def test_update_twin_with_a_stale_etag_is_refused(service, device):
    twin = await service.get_twin(device)
    await service.update_twin(device, tags={"n": 1})

    with pytest.raises(PreconditionFailed):
        await service.update_twin(device, tags={"n": 2}, etag=twin.etag)


async def test_twin_reads_what_the_sdk_wrote(service, rm, device):
    await asyncio.to_thread(
        rm.update_twin, device, {"tags": {"by": "sdk"}, "properties": {"desired": {"p": 1}}}
    )

    twin = await service.get_twin(device)

    assert (twin.device_id, twin.module_id) == (device, None)
    assert twin.tags == {"by": "sdk"}
    assert twin.desired == {"p": 1}
    assert twin.reported == {}


async def test_module_twin(service, rm, device):
    await service.create_or_update_module(device, "aws-bridge")

    twin = await service.replace_twin(
        device, {"relay": True}, {"reported-mirror": {"t": 1}}, module_id="aws-bridge"
    )
    patched = await service.update_twin(device, desired={"x": 2}, module_id="aws-bridge")

    seen = await asyncio.to_thread(rm.get_module_twin, device, "aws-bridge")
    assert seen.tags == {"relay": True}
    assert seen.properties.desired["x"] == 2
    assert patched.desired_version > twin.desired_version
    assert (await service.get_twin(device, module_id="aws-bridge")).etag == seen.etag
    assert (await service.get_twin(device)).tags == {}


async def test_twin_of_a_missing_device_is_not_found(service):
    with pytest.raises(NotFound):
        await service.get_twin("nobody")
    with pytest.raises(NotFound):
        await service.replace_twin("nobody", {}, {})
