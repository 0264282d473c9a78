"""Discovery with the fleet index: the same inventory as listing, in fewer requests."""

import json
from pathlib import Path
from typing import Any

from moto.core.exceptions import JsonRESTError

from bridge.discover import DiscoveryOptions, discover
from bridge.inventory.models import Inventory
from tests.discover.estates import build_small_estate, clients, cloud_for
from tests.standins import ControlPlane

SHADOWS_AND_CONFIG = {
    "thingIndexingMode": "REGISTRY_AND_SHADOW",
    "namedShadowIndexingMode": "ON",
    "filter": {"namedShadowNames": ["config"]},
}


def vary_shadows(plane: ControlPlane) -> None:
    """Shadows the index holds, shadows outside its filter, and things with none at all."""
    _iot, data = clients(plane.moto)

    def update(thing: str, state: dict[str, Any], shadow: str | None = None) -> None:
        extra = {"shadowName": shadow} if shadow else {}
        data.update_thing_shadow(thingName=thing, payload=json.dumps({"state": state}), **extra)

    update("sensor-001", {"reported": {"rssi": -70}}, "diag")  # outside the filter
    update("sensor-005", {"reported": {"rssi": -60}}, "diag")
    data.delete_thing_shadow(thingName="sensor-002")  # named shadows only: none here
    update("sensor-003", {"desired": None, "reported": None})  # empty state, version 2
    update("sensor-006", {"desired": {"mode": "eco"}}, "config")
    data.delete_thing_shadow(thingName="sensor-006", shadowName="config")  # gone, unlisted
    plane.client().create_thing(thingName="bare")  # no shadow, no certificate


def comparable(inventory: Inventory) -> dict[str, Any]:
    # The control plane alone keeps moto's describe_endpoint, a new host on every call.
    return inventory.model_dump(
        mode="json",
        exclude={"generated_at", "fleet_indexing", "thing_indexing_mode", "data_endpoint"},
    )


def count_shadow_reads(plane: ControlPlane) -> list[tuple[str, str | None]]:
    reads: list[tuple[str, str | None]] = []
    plane.moto.iot_data_hooks.after(
        "get_thing_shadow",
        lambda call: reads.append((call.arguments["thing_name"], call.arguments["shadow_name"])),
    )
    return reads


async def discover_into(plane: ControlPlane, path: Path) -> Inventory:
    return await discover(cloud_for(plane.moto), path, DiscoveryOptions(rate_scale=0))


async def test_fleet_index_and_listing_give_the_same_inventory(
    plane: ControlPlane, tmp_path: Path
) -> None:
    build_small_estate(plane.moto)
    vary_shadows(plane)
    listed = await discover_into(plane, tmp_path / "listed.json")
    plane.client().update_indexing_configuration(thingIndexingConfiguration=SHADOWS_AND_CONFIG)
    reads = count_shadow_reads(plane)

    indexed = await discover_into(plane, tmp_path / "indexed.json")

    assert comparable(indexed) == comparable(listed)
    assert (indexed.fleet_indexing, listed.fleet_indexing) == (True, False)
    # Only the shadows outside the index's filter were read one by one.
    assert sorted(reads) == [("sensor-001", "diag"), ("sensor-005", "diag")]
    things = {t.name: t for t in indexed.things}
    assert [s.name for s in things["sensor-000"].shadows] == [None, "config"]
    assert [s.name for s in things["sensor-001"].shadows] == [None, "diag"]
    assert [s.name for s in things["sensor-002"].shadows] == []
    assert [s.name for s in things["sensor-006"].shadows] == [None]
    assert things["bare"].shadows == []
    empty = things["sensor-003"].shadows[0]
    assert (empty.version, empty.desired, empty.reported, empty.size_bytes) == (2, None, None, 2)
    assert things["sensor-004"].shadows[1].desired == {"mode": "eco"}


async def test_registry_only_index_is_not_used_for_shadows(
    plane: ControlPlane, tmp_path: Path
) -> None:
    build_small_estate(plane.moto, things=4)
    plane.client().update_indexing_configuration(
        thingIndexingConfiguration={"thingIndexingMode": "REGISTRY"}
    )
    reads = count_shadow_reads(plane)
    inventory = await discover_into(plane, tmp_path / "inv.json")
    assert inventory.fleet_indexing is True
    assert len(reads) == 4 + 1  # every classic shadow, and sensor-000's named one


async def test_things_the_index_has_not_caught_up_with_are_read_directly(
    plane: ControlPlane, tmp_path: Path
) -> None:
    build_small_estate(plane.moto, things=8)
    listed = await discover_into(plane, tmp_path / "listed.json")
    plane.client().update_indexing_configuration(thingIndexingConfiguration=SHADOWS_AND_CONFIG)
    search = plane.index.search

    def lagging(*args: Any) -> tuple[list[dict[str, Any]], str | None]:
        # As AWS's eventually consistent index may be: sensor-004 is not in it yet.
        documents, token = search(*args)
        return [d for d in documents if d["thingName"] != "sensor-004"], token

    plane.index.search = lagging  # type: ignore[method-assign]
    reads = count_shadow_reads(plane)
    indexed = await discover_into(plane, tmp_path / "indexed.json")
    assert comparable(indexed) == comparable(listed)
    assert sorted(reads, key=str) == [("sensor-004", "config"), ("sensor-004", None)]


async def test_an_unreadable_index_falls_back_to_listing_with_a_finding(
    plane: ControlPlane, tmp_path: Path
) -> None:
    build_small_estate(plane.moto, things=4)
    listed = await discover_into(plane, tmp_path / "listed.json")
    plane.client().update_indexing_configuration(thingIndexingConfiguration=SHADOWS_AND_CONFIG)

    def deny(*_args: Any) -> Any:
        error = JsonRESTError("AccessDeniedException", "not allowed to search the index")
        error.code = 403
        raise error

    plane.index.search = deny  # type: ignore[method-assign]
    indexed = await discover_into(plane, tmp_path / "indexed.json")
    assert [f.code for f in indexed.findings] == ["FleetIndexUnreadable"]
    assert comparable(indexed.model_copy(update={"findings": []})) == comparable(listed)


async def test_index_pages_cover_a_fleet_larger_than_a_page(
    plane: ControlPlane, tmp_path: Path
) -> None:
    backend = plane.moto.iot
    for i in range(250):  # SearchIndex pages hold 100 things
        backend.create_thing(thing_name=f"t-{i:04d}", thing_type_name=None, attribute_payload=None)
        plane.shadows.apply_update(f"t-{i:04d}", None, {"state": {"reported": {"n": i}}})
    plane.client().update_indexing_configuration(thingIndexingConfiguration=SHADOWS_AND_CONFIG)
    reads = count_shadow_reads(plane)
    inventory = await discover_into(plane, tmp_path / "inv.json")
    assert reads == []
    assert [t.shadows[0].reported for t in inventory.things] == [{"n": i} for i in range(250)]
