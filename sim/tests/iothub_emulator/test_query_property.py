# ruff: noqa: S608 - IoT Hub query text for the emulator's parser, not a database
"""The IoT Hub query parser under any text: a query or QueryError (a 400), never a 500.

A parsed query must also run over any twin documents without raising: evaluation is
three-valued, so odd types make a comparison undefined, not an exception.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from bridge_sim.iothub.query import MAX_DEPTH, QueryError, parse_query

_VOCABULARY = (
    "SELECT", "select", "*", "FROM", "devices", "devices.modules", "WHERE", "GROUP", "BY",
    "AND", "OR", "NOT", "IN", "NIN", "AS", "true", "false", "null", "COUNT()", "count",
    "IS_DEFINED", "IS_NULL", "STARTSWITH", "ENDSWITH", "(", ")", "[", "]", ",", ".", "=",
    "!=", "<>", "<", "<=", ">", ">=", "'s'", '"d"', "'", "\\", "1", "-2.5", "1e3", "1e999",
    "deviceId", "tags.site", "properties.desired.x", "tags['k-1']", "status", "²", "\u0661",
    "é", "\n", "\x00",
)  # fmt: skip
token_soup = st.lists(st.sampled_from(_VOCABULARY), max_size=20).map(" ".join)
queries = (
    st.builds(
        lambda select, where: f"SELECT {select} FROM devices WHERE {where}",
        token_soup,
        token_soup,
    )
    | token_soup
    | st.text(max_size=60)
)
scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5)
documents = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(["deviceId", "tags", "site", "x", "k-1"]), inner)
    ),
    max_leaves=10,
)


def _parses_or_refused(text: str) -> Any:
    try:
        return parse_query(text)
    except QueryError as exc:
        message = str(exc)
    assert message
    return None


# Found by this test: deep nesting exhausted the recursive descent (RecursionError), which
# the REST layer answered with a 500 instead of a 400.
@example("SELECT * FROM devices WHERE " + "(" * 2000 + "x = 1" + ")" * 2000, [])
@example("SELECT * FROM devices WHERE " + "NOT " * 5000 + "x", [])
@example("SELECT * FROM devices WHERE x IN [1, 'a', null, 1e999]", [])
@example("SELECT * FROM devices WHERE STARTSWITH(x)", [])
@settings(deadline=None)
@given(queries, st.lists(st.dictionaries(st.text(max_size=5), documents), max_size=3))
def test_queries_parse_and_run_or_are_refused(text: str, twins: list[dict[str, Any]]) -> None:
    query = _parses_or_refused(text)
    if query is not None:
        query.run(twins)


def test_nesting_is_bounded_with_a_syntax_error() -> None:
    deep = MAX_DEPTH - 1
    parse_query("SELECT * FROM devices WHERE " + "(" * deep + "x = 1" + ")" * deep)
    with pytest.raises(QueryError, match="nested more than"):
        parse_query("SELECT * FROM devices WHERE " + "NOT (" * 100 + "x" + ")" * 100)
