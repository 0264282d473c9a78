"""Bulk registry operations and queries with paging, through the SDK."""

from __future__ import annotations

import pytest
from azure.iot.hub.models import (
    AuthenticationMechanism,
    ExportImportDevice,
    QuerySpecification,
    SymmetricKey,
)
from msrest.exceptions import HttpOperationError

from bridge_sim.iothub.errors import IoTHubError
from bridge_sim.iothub.query_pages import QueryPages
from bridge_sim.iothub.sas import generate_key


def _entry(device_id, mode="create", **kwargs) -> ExportImportDevice:
    return ExportImportDevice(id=device_id, import_mode=mode, status="enabled", **kwargs)


def test_bulk_create_succeeds(rm):
    key = generate_key()
    auth = AuthenticationMechanism(
        type="sas", symmetric_key=SymmetricKey(primary_key=key, secondary_key=generate_key())
    )
    entries = [_entry(f"bulk-{i}") for i in range(10)] + [_entry("bulk-key", authentication=auth)]
    result = rm.bulk_create_or_update_devices(entries)
    assert result.is_successful is True
    assert result.errors == []
    assert len(rm.get_devices()) == 11
    assert rm.get_device("bulk-key").authentication.symmetric_key.primary_key == key


def test_bulk_partial_failure_reports_each_error(rm):
    rm.create_device_with_sas("exists", None, None, "enabled")
    entries = [
        _entry("fresh"),
        _entry("exists"),
        _entry("ghost", "update"),
        _entry("ghost2", "delete"),
        _entry("twin-target", "createOrUpdate", tags={"site": "x"}),
    ]
    result = rm.bulk_create_or_update_devices(entries)
    assert result.is_successful is False
    failures = {(e.device_id, e.error_code) for e in result.errors}
    assert failures == {
        ("exists", "DeviceAlreadyExists"),
        ("ghost", "DeviceNotFound"),
        ("ghost2", "DeviceNotFound"),
    }
    assert all(e.error_status for e in result.errors)
    assert rm.get_device("fresh").device_id == "fresh"
    assert rm.get_twin("twin-target").tags == {"site": "x"}


def test_bulk_etag_modes(rm):
    device = rm.create_device_with_sas("etagged", None, None, "enabled")
    twin = rm.get_twin("etagged")
    result = rm.bulk_create_or_update_devices(
        [
            ExportImportDevice(
                id="etagged", import_mode="updateIfMatchETag", e_tag="stale", status="disabled"
            )
        ]
    )
    assert [e.error_code for e in result.errors] == ["PreconditionFailed"]
    result = rm.bulk_create_or_update_devices(
        [
            ExportImportDevice(
                id="etagged", import_mode="updateIfMatchETag", e_tag=device.etag, status="disabled"
            )
        ]
    )
    assert result.is_successful
    assert rm.get_device("etagged").status == "disabled"
    result = rm.bulk_create_or_update_devices(
        [
            ExportImportDevice(
                id="etagged",
                import_mode="updateTwinIfMatchETag",
                twin_etag=twin.etag,
                tags={"moved": True},
            )
        ]
    )
    assert result.is_successful
    assert rm.get_twin("etagged").tags == {"moved": True}
    result = rm.bulk_create_or_update_devices(
        [ExportImportDevice(id="etagged", import_mode="deleteIfMatchETag", e_tag="nope")]
    )
    assert [e.error_code for e in result.errors] == ["PreconditionFailed"]
    current = rm.get_device("etagged").etag
    rm.bulk_create_or_update_devices(
        [ExportImportDevice(id="etagged", import_mode="deleteIfMatchETag", e_tag=current)]
    )
    assert rm.get_devices() == []


def test_bulk_over_100_is_400(rm, service_hub):
    # The SDK accepts 400 from this route, so look at the wire as well.
    result = rm.bulk_create_or_update_devices([_entry(f"d{i}") for i in range(101)])
    assert not result.is_successful
    response = service_hub.raw("POST", "/devices", json=[{"id": f"d{i}"} for i in range(101)])
    assert response.status_code == 400
    assert response.headers["iothub-errorcode"] == "TooManyDevices"
    assert rm.get_devices() == []


def _query(rm, text, page_size=None):
    pages, token = [], None
    while True:
        result = rm.query_iot_hub(QuerySpecification(query=text), token, page_size)
        pages.append(result)
        token = result.continuation_token
        if not token:
            return pages


@pytest.fixture
def fleet(rm):
    entries = [
        ExportImportDevice(
            id=f"q-{i:02d}",
            import_mode="create",
            status="disabled" if i % 5 == 0 else "enabled",
            tags={"site": "oslo" if i % 2 else "bergen", "rack": {"row": i % 3}},
            properties={"desired": {"fw": "2.0" if i < 10 else "1.0", "rate": i}},
        )
        for i in range(25)
    ]
    assert rm.bulk_create_or_update_devices(entries).is_successful
    return entries


def test_query_pages_through_all_twins(rm, fleet):
    pages = _query(rm, "SELECT * FROM devices", page_size=10)
    assert [len(p.items) for p in pages] == [10, 10, 5]
    assert all(p.type == "Twin" for p in pages)
    assert pages[-1].continuation_token is None
    ids = [item.device_id for page in pages for item in page.items]
    assert ids == [f"q-{i:02d}" for i in range(25)]


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("tags.site = 'oslo'", 12),
        ("tags.site = 'oslo' AND tags.rack.row = 0", 4),
        ("properties.desired.fw = '2.0' OR status = 'disabled'", 13),
        ("NOT (tags.site = 'oslo')", 13),
        ("properties.desired.rate >= 20", 5),
        ("deviceId IN ['q-01', 'q-02', 'missing']", 2),
        ("IS_DEFINED(tags.rack.row) AND NOT IS_DEFINED(tags.nothing)", 25),
        ("properties.reported.temp = 1", 0),
        ("connectionState = \"Disconnected\" AND status <> 'disabled'", 20),
    ],
)
def test_query_where_shapes(rm, fleet, where, expected):
    pages = _query(rm, f"SELECT * FROM devices WHERE {where}")  # noqa: S608 - IoT Hub query text, no database
    assert sum(len(p.items) for p in pages) == expected


def test_query_count(rm, fleet):
    pages = _query(rm, "SELECT COUNT() AS total FROM devices WHERE tags.site = 'bergen'")
    assert pages[0].items[0].additional_properties == {"total": 13}


def test_query_projection_and_group_by(rm, fleet):
    pages = _query(rm, "SELECT deviceId, tags.site AS site FROM devices WHERE deviceId = 'q-03'")
    assert pages[0].type == "JSON"
    assert pages[0].items[0].device_id == "q-03"
    assert pages[0].items[0].additional_properties == {"site": "oslo"}
    pages = _query(rm, "SELECT tags.site AS site, COUNT() AS n FROM devices GROUP BY tags.site")
    counts = {
        row.additional_properties["site"]: row.additional_properties["n"] for row in pages[0].items
    }
    assert counts == {"bergen": 13, "oslo": 12}


def test_query_modules(rm, fleet):
    rm.create_module_with_sas("q-01", "agent", None, None, None)
    rm.create_module_with_sas("q-02", "agent", None, None, None)
    pages = _query(rm, "SELECT * FROM devices.modules WHERE moduleId = 'agent'")
    assert sorted(i.device_id for i in pages[0].items) == ["q-01", "q-02"]


def test_malformed_query_is_400(rm, fleet):
    with pytest.raises(HttpOperationError) as error:
        rm.query_iot_hub(QuerySpecification(query="SELECT * FROM devices WHERE"))
    assert error.value.response.status_code == 400
    assert error.value.response.headers["iothub-errorcode"] == "BadRequest"
    assert "Syntax error" in error.value.response.json()["Message"]


def test_paging_reads_one_snapshot_even_while_the_registry_changes(rm, fleet):
    first = rm.query_iot_hub(QuerySpecification(query="SELECT * FROM devices"), None, 10)
    rm.delete_device("q-24")  # a device on a later page goes away mid-paging
    rest = []
    token = first.continuation_token
    while token:
        page = rm.query_iot_hub(QuerySpecification(query="SELECT * FROM devices"), token, 10)
        rest.extend(page.items)
        token = page.continuation_token
    ids = [item.device_id for item in [*first.items, *rest]]
    assert ids == [f"q-{i:02d}" for i in range(25)], "pages come from the first page's result"
    fresh = _query(rm, "SELECT * FROM devices", page_size=10)
    assert sum(len(p.items) for p in fresh) == 24, "a new query sees the deletion"


def test_an_expired_snapshot_falls_back_to_running_the_query_again() -> None:
    pages = QueryPages(ttl_s=-1)
    snapshot = pages.keep([{"deviceId": "a"}])
    assert pages.rows(snapshot) is None
    assert QueryPages.parse(QueryPages.token(snapshot, 30)) == (snapshot, 30)
    with pytest.raises(IoTHubError):
        QueryPages.parse("not-base64!")
