"""Fuzz the rule SQL parser and translator: any text is a query, a RuleSqlError, or a finding."""

from __future__ import annotations

import sys
from pathlib import Path

from bridge.plan.rules import RuleSqlError, parse_rule_sql, translate_topic_rule


def test_one_input(data: bytes) -> None:
    sql = data.decode("utf-8", "replace")
    try:
        parse_rule_sql(sql)
    except RuleSqlError as exc:
        if not 0 <= exc.position <= len(sql):
            raise AssertionError(f"error position {exc.position} outside the statement") from exc
    translate_topic_rule({"ruleName": "r", "sql": sql, "actions": [{"lambda": {}}]})


SEEDS = (
    b"SELECT * FROM 'fleet/+/data'",
    b"SELECT temp, topic(2) AS device FROM 'a/+/b' WHERE temp > 30 AND NOT (status = 'ok')",
    b"SELECT CASE state.x WHEN 1 THEN 'a' ELSE 'b' END FROM '$aws/things/+/shadow/update'",
    b"SELECT get(*, 'k')[0].v, cast(x AS String) FROM '#' WHERE x IN (1, 2) OR y <> -1.5e3",
    b"SELECT (SELECT v FROM items WHERE v > 1) AS big FROM 't' WHERE clientid() = \"c\"",
)

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from fuzz._harness import fuzz

    fuzz("rules_sql", test_one_input, SEEDS)
