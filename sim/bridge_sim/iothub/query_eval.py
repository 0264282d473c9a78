"""Evaluation of parsed IoT Hub queries over twin documents, in three-valued logic.

A comparison against a missing property, or between values of different types, is
undefined (neither true nor false), as in IoT Hub; a twin matches only when its WHERE
clause is true.
"""

from __future__ import annotations

import enum
from typing import Any, Final

__all__ = ["UNDEFINED", "Node", "QueryError", "Truth", "evaluate", "lookup"]


class QueryError(ValueError):
    """Raised for a query the parser cannot read; the REST layer answers 400."""


class _Undefined(enum.Enum):
    UNDEFINED = enum.auto()


UNDEFINED: Final[_Undefined] = _Undefined.UNDEFINED
Truth = bool | _Undefined

# The expression tree is nested tuples tagged by their first item: path, literal,
# compare (op, left, right), in (negated, operand, values), and, or, not, call, group.
Node = tuple[Any, ...]


def lookup(document: Any, path: tuple[str, ...]) -> Any:
    value = document
    for segment in path:
        if not isinstance(value, dict) or segment not in value:
            return UNDEFINED
        value = value[segment]
    return value


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "other"


def _compare(op: str, left: Any, right: Any) -> Truth:
    if left is UNDEFINED or right is UNDEFINED:
        return _Undefined.UNDEFINED
    kind = _kind(left)
    if kind != _kind(right) or kind == "other":
        # Values of different types are never equal and never ordered.
        return UNDEFINED if op not in {"=", "!="} else op == "!="
    if op == "=":
        return bool(left == right)
    if op == "!=":
        return bool(left != right)
    if kind in {"null", "bool"}:
        return UNDEFINED
    ordered = {"<": left < right, "<=": left <= right, ">": left > right, ">=": left >= right}
    return bool(ordered[op])


def _call(name: str, args: list[Any]) -> Truth:
    if name == "is_defined":
        return args[0] is not UNDEFINED
    if name == "is_null":
        return args[0] is None
    subject, affix = args
    if not isinstance(subject, str) or not isinstance(affix, str):
        return UNDEFINED
    return subject.startswith(affix) if name == "startswith" else subject.endswith(affix)


def _value(node: Node, document: dict[str, Any]) -> Any:
    kind = node[0]
    if kind == "path":
        return lookup(document, node[1])
    if kind == "literal":
        return node[1]
    return evaluate(node, document)


def evaluate(node: Node, document: dict[str, Any]) -> Truth:
    kind = node[0]
    if kind == "compare":
        op: str = node[1]
        return _compare(op, _value(node[2], document), _value(node[3], document))
    if kind == "in":
        value = _value(node[2], document)
        if value is UNDEFINED:
            return _Undefined.UNDEFINED
        found = any(_compare("=", value, candidate) is True for candidate in node[3])
        negated: bool = node[1]
        return not found if negated else found
    if kind == "and":
        left, right = evaluate(node[1], document), evaluate(node[2], document)
        if left is False or right is False:
            return False
        return UNDEFINED if UNDEFINED in (left, right) else True
    if kind == "or":
        left, right = evaluate(node[1], document), evaluate(node[2], document)
        if left is True or right is True:
            return True
        return UNDEFINED if UNDEFINED in (left, right) else False
    if kind == "not":
        operand = evaluate(node[1], document)
        return operand if operand is UNDEFINED else not operand
    if kind == "call":
        return _call(node[1], [_value(arg, document) for arg in node[2]])
    if kind == "group":
        return evaluate(node[1], document)
    raise QueryError(f"cannot evaluate {kind}")
