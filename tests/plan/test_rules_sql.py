"""Parser tests for AWS IoT SQL: shapes it reads, and precise errors for what it refuses."""

from __future__ import annotations

import pytest

from bridge.plan.rules import RuleSqlError, parse_rule_sql
from bridge.plan.rules.ast import (
    Binary,
    Call,
    Case,
    Cast,
    Field,
    Literal,
    NestedSelect,
    Unary,
    Wildcard,
)


def test_select_star_with_where() -> None:
    query = parse_rule_sql("SELECT * FROM 'sensors/+/telemetry' WHERE temperature > 50")
    assert query.selects_whole_message
    assert query.topic_filter == "sensors/+/telemetry"
    assert query.where == Binary(">", Field(("temperature",), 42), Literal(50, 56), 54)


def test_select_list_with_aliases_paths_and_functions() -> None:
    query = parse_rule_sql(
        'select a.b.c, arr[0].v AS first, topic(2) as deviceId, timestamp() AS ts from "dt/#"'
    )
    exprs = [item.expr for item in query.items]
    assert [item.alias for item in query.items] == [None, "first", "deviceId", "ts"]
    assert isinstance(exprs[0], Field)
    assert exprs[0].path == ("a", "b", "c")
    assert isinstance(exprs[1], Field)
    assert exprs[1].path == ("arr", 0, "v")
    assert isinstance(exprs[2], Call)
    assert exprs[2].name == "topic"
    assert query.topic_filter == "dt/#"
    assert not query.selects_whole_message


def test_star_with_extra_fields_and_nested_wildcard() -> None:
    query = parse_rule_sql("SELECT *, state.reported.* FROM '$aws/things/+/shadow/update'")
    assert query.items[0].expr == Wildcard((), 7)
    assert query.items[1].expr == Wildcard(("state", "reported"), 10)


def test_precedence_not_and_or() -> None:
    query = parse_rule_sql("SELECT * FROM 't' WHERE NOT a = 1 AND b = 2 OR c = 3")
    where = query.where
    assert isinstance(where, Binary)
    assert where.op == "OR"
    assert isinstance(where.left, Binary)
    assert where.left.op == "AND"
    assert isinstance(where.left.left, Unary)
    assert where.left.left.op == "NOT"


def test_arithmetic_precedence_and_negative_numbers() -> None:
    query = parse_rule_sql("SELECT * FROM 't' WHERE a + b * 2 > -1.5")
    where = query.where
    assert isinstance(where, Binary)
    assert where.right == Literal(-1.5, 36)
    assert isinstance(where.left, Binary)
    assert where.left.op == "+"
    assert isinstance(where.left.right, Binary)
    assert where.left.right.op == "*"


def test_literals_keywords_and_escapes() -> None:
    query = parse_rule_sql("SELECT * FROM 't' WHERE a = 'it''s' OR b = TRUE OR c = null")
    assert query.where is not None
    assert "it's" in repr(query.where)
    assert "value=True" in repr(query.where)


def test_cast_case_in_and_nested_select() -> None:
    query = parse_rule_sql(
        "SELECT cast(t AS Decimal) AS t, CASE WHEN a > 1 THEN 'hi' ELSE 'lo' END AS lvl, "
        "(SELECT v FROM readings WHERE v > 10) AS high FROM 'x' WHERE 'red' IN colors"
    )
    assert isinstance(query.items[0].expr, Cast)
    assert isinstance(query.items[1].expr, Case)
    assert isinstance(query.items[2].expr, NestedSelect)
    assert isinstance(query.where, Binary)
    assert query.where.op == "IN"


def test_backquoted_field_names() -> None:
    query = parse_rule_sql("SELECT * FROM 't' WHERE `battery-level` < 10")
    assert isinstance(query.where, Binary)
    assert query.where.left == Field(("battery-level",), 24)


@pytest.mark.parametrize(
    ("sql", "reason", "position"),
    [
        ("SELECT * FROM 'a/b WHERE x = 1", "unterminated string starting with '", 14),
        ("SELECT * FROM 'a' WHERE name = 'bob", "unterminated string starting with '", 31),
        ("SELECT * WHERE x = 1", "expected FROM after the SELECT list, found 'WHERE'", 9),
        ("SELECT temperature", "expected FROM after the SELECT list, found end of statement", 18),
        ("SELECT * FROM 'a' WHERE x == 1", "'==' is not an AWS IoT SQL operator; use '='", 26),
        (
            "SELECT * FROM 'a' WHERE x = 1 && y = 2",
            "'&&' is not an AWS IoT SQL operator; use 'AND'",
            30,
        ),
        ("SELECT * FROM 'a' WHERE x >", "expected an expression, found end of statement", 27),
        (
            "SELECT * FROM 'a' WHERE 1 < x < 3",
            "comparisons cannot be chained; combine them with AND",
            30,
        ),
        ("SELECT * FROM 'a' WHERE x ~ 1", "unexpected character '~'", 26),
        ("SELECT FROM 'a'", "expected a SELECT item before FROM", 7),
        ("UPDATE things", "expected SELECT, found 'UPDATE'", 0),
        ("SELECT * FROM topic", "expected a quoted topic filter after FROM", 14),
        (
            "SELECT * FROM 'a/#/b'",
            "'#' must be a whole level and the last one of the topic filter",
            14,
        ),
        ("SELECT * FROM 'a/b+'", "'+' must be a whole level of the topic filter", 14),
        ("SELECT * FROM ''", "the topic filter is empty", 14),
        ("SELECT * FROM 'a' WHERE (x = 1", "expected ')', found end of statement", 30),
        ("SELECT * FROM 'a' WHERE f(x, ", "expected an expression, found end of statement", 29),
        ("SELECT * FROM 'a' WHERE x = 1 y", "unexpected 'y' after the statement", 30),
        ("SELECT * FROM 'a' WHERE a[x] = 1", "expected an integer array index inside [ ]", 26),
        ("SELECT * FROM 'a' WHERE 1.2.3 = 1", "malformed number '1.2.3'", 24),
        ("SELECT * FROM 'a' WHERE a.* = 1", "'.*' is only allowed in the SELECT list", 26),
        (
            "SELECT * FROM 'a' WHERE cast(x) > 1",
            "expected AS in cast(value AS type), found ')'",
            30,
        ),
        ("SELECT x AS FROM 'a'", "expected an alias name after AS", 12),
        ("SELECT CASE END FROM 'a'", "expected an expression, found 'END'", 12),
    ],
)
def test_malformed_sql_is_reported_with_position(sql: str, reason: str, position: int) -> None:
    with pytest.raises(RuleSqlError) as caught:
        parse_rule_sql(sql)
    assert (caught.value.reason, caught.value.position) == (reason, position)
    assert "column" in str(caught.value)


def test_error_reports_line_and_column() -> None:
    with pytest.raises(RuleSqlError, match=r"line 2, column 18"):
        parse_rule_sql("SELECT *\nFROM 'a' WHERE x == 1")
