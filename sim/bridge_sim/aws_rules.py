"""What AWS IoT would do with a message: does a topic rule select it? Independent of routing.

The AWS side of "routes proven": an MQTT topic filter match (`+`, `#`, no wildcard match
of `$` topics) and the rule's WHERE clause evaluated on the JSON payload with AWS IoT SQL
2016-03-23 semantics, over the planner's parse tree (`bridge.plan.rules.sql`) but never
its translation. A missing field is Undefined; comparing values of different types, or
calling a function with the wrong type, is Undefined too; only a WHERE that is true
selects. AWS's coercion of numeric strings to numbers is left out (the planner flags it as
a difference), so payloads should carry numbers as JSON numbers. Functions beyond the
common ones raise NotImplementedError, so a check never guesses.
"""

from __future__ import annotations

import json
import math
import operator
from collections.abc import Callable, Mapping
from typing import Any

from bridge.mapping.telemetry import topic_matches
from bridge.plan.rules.ast import Binary, Call, Expr, Field, Literal, RuleQuery, Unary
from bridge.plan.rules.sql import parse_rule_sql

__all__ = ["UNDEFINED", "AwsRule", "where_value"]


class _Undefined:
    def __repr__(self) -> str:
        return "Undefined"


UNDEFINED: Any = _Undefined()
_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq, "<>": operator.ne, "!=": operator.ne,
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
}  # fmt: skip


class AwsRule:
    """One topic rule's FROM and WHERE; `selects` is AWS's verdict on a message."""

    def __init__(self, name: str, sql: str, *, enabled: bool = True) -> None:
        self.name = name
        self.enabled = enabled
        self.query: RuleQuery = parse_rule_sql(sql)

    @classmethod
    def from_inventory(cls, rule: Mapping[str, Any]) -> AwsRule:
        """From `iot.get_topic_rule(...)["rule"]` (the inventory's shape)."""
        return cls(
            str(rule["ruleName"]), str(rule["sql"]), enabled=not rule.get("ruleDisabled", False)
        )

    def selects(self, topic: str, payload: bytes, client_id: str) -> bool:
        """Whether AWS would run this rule's actions for `payload` published on `topic`."""
        # MQTT filter matching, as AWS IoT applies a rule's FROM clause (the relay's own).
        if not self.enabled or not topic_matches(self.query.topic_filter, topic):
            return False
        if self.query.where is None:
            return True
        try:
            body = json.loads(payload)
        except ValueError:
            body = UNDEFINED
        return where_value(self.query.where, _Message(topic, body, client_id)) is True


class _Message:
    def __init__(self, topic: str, body: Any, client_id: str) -> None:
        self.topic, self.body, self.client_id = topic, body, client_id


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _field(body: Any, path: tuple[str | int, ...]) -> Any:
    value = body
    for step in path:
        if isinstance(step, int):
            if not isinstance(value, list) or not -len(value) <= step < len(value):
                return UNDEFINED
        elif not isinstance(value, dict) or step not in value:
            return UNDEFINED
        value = value[step]
    return value


def where_value(expr: Expr, message: Any) -> Any:
    """The value of a WHERE (sub)expression for one message, in AWS's semantics."""
    if isinstance(expr, Literal):
        return expr.value
    if isinstance(expr, Field):
        return _field(message.body, expr.path)
    if isinstance(expr, Unary):
        operand = where_value(expr.operand, message)
        if expr.op == "NOT":
            return (not operand) if isinstance(operand, bool) else UNDEFINED
        return -operand if _is_number(operand) else UNDEFINED
    if isinstance(expr, Binary):
        return _binary(expr.op, where_value(expr.left, message), where_value(expr.right, message))
    if isinstance(expr, Call):
        args = [where_value(arg, message) for arg in expr.args]
        return _call(expr.name.lower(), args, message)
    raise NotImplementedError(f"{type(expr).__name__} in a WHERE clause")


def _binary(op: str, left: Any, right: Any) -> Any:
    if op == "AND":
        if left is False or right is False:
            return False
        return True if left is True and right is True else UNDEFINED
    if op == "OR":
        if left is True or right is True:
            return True
        return False if left is False and right is False else UNDEFINED
    if op in _COMPARE:
        same = (_is_number(left) and _is_number(right)) or (
            type(left) is type(right) and isinstance(left, str | bool)
        )
        return _COMPARE[op](left, right) if same else UNDEFINED
    if not (_is_number(left) and _is_number(right)) or (op in {"/", "%"} and right == 0):
        return UNDEFINED
    if op == "%":
        result = math.fmod(left, right)
        return int(result) if isinstance(left, int) and isinstance(right, int) else result
    functions = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv}
    if op not in functions:
        raise NotImplementedError(f"operator {op}")
    return functions[op](left, right)


def _strings(args: list[Any], count: int) -> bool:
    return len(args) == count and all(isinstance(arg, str) for arg in args)


def _call(name: str, args: list[Any], message: _Message) -> Any:
    if name == "topic":
        levels = message.topic.split("/")
        if not args:
            return message.topic
        level = args[0]
        return (
            levels[level - 1] if isinstance(level, int) and 0 < level <= len(levels) else UNDEFINED
        )
    if name == "clientid":
        return message.client_id
    if name == "isundefined":
        return args[0] is UNDEFINED
    if name in {"startswith", "endswith"}:
        if not _strings(args, 2):
            return UNDEFINED
        return args[0].startswith(args[1]) if name == "startswith" else args[0].endswith(args[1])
    if name in {"lower", "upper"}:
        if not _strings(args, 1):
            return UNDEFINED
        return args[0].lower() if name == "lower" else args[0].upper()
    if name == "abs":
        return abs(args[0]) if _is_number(args[0]) else UNDEFINED
    if name == "mod":
        return _binary("%", args[0], args[1])
    raise NotImplementedError(f"AWS function {name}()")
