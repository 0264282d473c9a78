# ruff: noqa: S608 - the "SQL" here is AWS IoT rule text fed to our parser, not a database
"""The rule SQL parser under arbitrary text: a parsed rule or a RuleSqlError, never a crash.

Rules come from the customer's AWS account through the inventory; one unreadable rule must
become a SQL_ERROR finding in the plan, not stop `iot-bridge plan`.
"""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from bridge.plan.rules import RuleSqlError, parse_rule_sql, translate_topic_rule
from bridge.plan.rules.ast import RuleQuery
from bridge.plan.rules.models import FindingCode
from bridge.plan.rules.sql import MAX_DEPTH

_VOCABULARY = (
    "SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "AS", "IN", "CASE", "WHEN", "THEN", "ELSE",
    "END", "TRUE", "FALSE", "NULL", "*", ",", ".", "(", ")", "[", "]", "=", "<>", "!=", "<",
    "<=", ">", ">=", "+", "-", "/", "%", "'t/+/x'", "'#'", '"s"', "`q`", "'", '"', "`",
    "a", "b.c", "$x", "topic(2)", "clientid()", "cast", "get", "1", "2.5", "1e3", "1.2.3",
    ".5", "0x1", "²", "١٢", "½", "==", "&&", "||", "!", "\\", "\n", "\t", "é", "\x00",
)  # fmt: skip
token_soup = st.lists(st.sampled_from(_VOCABULARY), max_size=25).map(" ".join)
statements = st.builds(
    lambda items, where: f"SELECT {items} FROM 'a/+/b'" + (f" WHERE {where}" if where else ""),
    token_soup,
    token_soup,
)
sql_text = statements | token_soup | st.text(max_size=80)


def _parses_or_says_where(sql: str) -> None:
    try:
        query = parse_rule_sql(sql)
    except RuleSqlError as exc:
        error = exc
    else:
        assert isinstance(query, RuleQuery)
        return
    assert error.reason
    assert 0 <= error.position <= len(sql)


# Found by this test: Unicode digits that are not ASCII (²) passed isdigit() in the lexer
# and then int()/float() raised ValueError.
@example("SELECT ² FROM 'a'")
@example("SELECT a[²] FROM 'a'")
@example("SELECT 1.² FROM 'a'")
# Deep nesting exhausted the recursive descent (RecursionError).
@example("SELECT " + "(" * 5000 + "a" + ")" * 5000 + " FROM 'a'")
@example("SELECT * FROM 'a' WHERE " + "NOT " * 5000 + "a")
@example("SELECT " + "-" * 5000 + "1 FROM 'a'")
@given(sql_text)
def test_parse_gives_a_query_or_a_located_error(sql: str) -> None:
    _parses_or_says_where(sql)


@given(sql_text, st.booleans())
def test_translation_never_raises(sql: str, disabled: bool) -> None:
    translation = translate_topic_rule(
        {"ruleName": "r", "sql": sql, "ruleDisabled": disabled, "actions": []}
    )
    try:
        parse_rule_sql(sql)
    except RuleSqlError:
        assert any(issue.code is FindingCode.SQL_ERROR for issue in translation.issues)


def test_nesting_is_bounded_with_a_clear_error() -> None:
    deep = MAX_DEPTH - 1
    parse_rule_sql("SELECT " + "(" * deep + "a" + ")" * deep + " FROM 'a'")
    with pytest.raises(RuleSqlError, match="nests more than"):
        parse_rule_sql("SELECT " + "abs(" * 1000 + "a" + ")" * 1000 + " FROM 'a'")
