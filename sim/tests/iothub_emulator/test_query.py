"""The query parser and evaluator, without a server."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge_sim.iothub.query import QueryError, parse_query

TWINS = [
    {
        "deviceId": "a",
        "status": "enabled",
        "tags": {"site": "oslo", "floor": 2, "ok": True, "odd-key": "x"},
        "properties": {"desired": {"fw": "1.0"}, "reported": {"temp": 20.5, "nothing": None}},
    },
    {
        "deviceId": "b",
        "status": "disabled",
        "tags": {"site": "bergen", "floor": 10},
        "properties": {"desired": {"fw": "2.0"}, "reported": {}},
    },
    {
        "deviceId": "c",
        "status": "enabled",
        "tags": {},
        "properties": {"desired": {}, "reported": {}},
    },
]


def ids(text: str) -> list[str]:
    return [row["deviceId"] for row in parse_query(text).run(TWINS)]


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("tags.site = 'oslo'", ["a"]),
        ('tags.site = "oslo"', ["a"]),
        ("tags.site != 'oslo'", ["b"]),  # undefined on c: not a match
        ("tags.floor > 2", ["b"]),
        ("tags.floor <= 2", ["a"]),
        ("tags.floor = '2'", []),  # no coercion between types
        ("tags.ok = true", ["a"]),
        ("tags.ok", ["a"]),
        ("properties.reported.nothing = null", ["a"]),
        ("properties.reported.temp >= 20.5", ["a"]),
        ("status = 'enabled' AND NOT tags.site = 'oslo'", []),
        ("status = 'enabled' AND NOT IS_DEFINED(tags.site)", ["c"]),
        ("(status = 'disabled' OR tags.floor = 2) AND deviceId <> 'b'", ["a"]),
        ("deviceId IN ['a', 'c']", ["a", "c"]),
        ("deviceId NIN ['a', 'c']", ["b"]),
        ("STARTSWITH(properties.desired.fw, '2.')", ["b"]),
        ("ENDSWITH(deviceId, 'c')", ["c"]),
        ("IS_NULL(properties.reported.nothing)", ["a"]),
        ("tags['odd-key'] = 'x'", ["a"]),
        ("tags.floor = -1 OR tags.floor = 1e1", ["b"]),
        ("status = 'enabled' or status = 'disabled'", ["a", "b", "c"]),
    ],
)
def test_where_clauses(where, expected):
    assert ids(f"SELECT * FROM devices WHERE {where}") == expected  # noqa: S608 - IoT Hub query text, no database


def test_select_without_where_and_keywords_in_any_case():
    assert ids("select * from DEVICES") == ["a", "b", "c"]


def test_count_with_and_without_alias():
    assert parse_query("SELECT COUNT() AS n FROM devices WHERE status = 'enabled'").run(TWINS) == [
        {"n": 2}
    ]
    assert parse_query("SELECT COUNT() FROM devices").run(TWINS) == [{"numberOfDevices": 3}]


def test_projection_names_columns_by_alias_or_last_segment():
    rows = parse_query(
        "SELECT deviceId, tags.site, properties.desired.fw AS firmware FROM devices"
    ).run(TWINS)
    assert rows == [
        {"deviceId": "a", "site": "oslo", "firmware": "1.0"},
        {"deviceId": "b", "site": "bergen", "firmware": "2.0"},
        {"deviceId": "c"},
    ]


def test_group_by_counts_each_value():
    query = parse_query("SELECT status, COUNT() AS n FROM devices GROUP BY status")
    assert query.projects
    assert query.run(TWINS) == [{"status": "enabled", "n": 2}, {"status": "disabled", "n": 1}]


def test_keywords_are_property_names_after_a_dot():
    twins = [{"deviceId": "g", "tags": {"group": "blue", "by": 1}}]
    assert parse_query("SELECT * FROM devices WHERE tags.group = 'blue'").run(twins) == twins


def test_modules_source():
    assert parse_query("SELECT * FROM devices.modules").source == "devices.modules"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "SELECT",
        "SELECT * FROM",
        "SELECT * FROM devices WHERE",
        "SELECT * FROM devices WHERE status =",
        "SELECT * FROM devices WHERE (status = 'x'",
        "SELECT * FROM devices WHERE status = 'x' AND",
        "SELECT * FROM jobs",
        "SELECT * FROM devices WHERE deviceId IN ['a'",
        "SELECT * FROM devices WHERE status = 'unterminated",
        "SELECT * FROM devices WHERE IS_DEFINED(a, b)",
        "SELECT * FROM devices extra",
        "SELECT * FROM devices WHERE a # 1",
        "SELECT deviceId, FROM devices",
        "SELECT 1 FROM devices",
        "SELECT * FROM devices GROUP status",
        "DELETE FROM devices",
    ],
)
def test_malformed_queries_raise(text):
    with pytest.raises(QueryError):
        parse_query(text)


@given(st.text(max_size=60))
def test_arbitrary_text_never_crashes_the_parser(text):
    try:
        query = parse_query(text)
    except QueryError:
        return
    query.run(TWINS)


@given(st.text(alphabet=st.characters(blacklist_characters="'\\"), max_size=20))
def test_string_literals_round_trip(value):
    twins = [{"deviceId": "x", "tags": {"v": value}}]
    assert parse_query(f"SELECT * FROM devices WHERE tags.v = '{value}'").run(twins) == twins  # noqa: S608 - IoT Hub query text, no database
