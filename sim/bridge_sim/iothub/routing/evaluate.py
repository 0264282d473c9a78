"""Evaluation of parsed route conditions over a message, in IoT Hub's three-valued logic.

A reference to something missing is `undefined`; an operator or function given a value of
the wrong type (a string to `ABS`, a number compared with a string) is undefined too, and so
is everything computed from it, except `IS_DEFINED` and the other type checks. `AND`, `OR`
and `NOT` treat anything but a Boolean as undefined. A route takes a message only when its
condition is exactly `true`: false, null and undefined all leave the message alone.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from typing import Any

from bridge_sim.iothub.routing.query import Call, Literal, Node, Reference, Unary
from bridge_sim.iothub.routing.values import UNDEFINED, RoutedMessage, lookup

__all__ = ["evaluate", "matches"]

_ORDER: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq, "!=": operator.ne, "<>": operator.ne,
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
}  # fmt: skip


def matches(condition: Node, message: RoutedMessage) -> bool:
    """Whether a route with this condition takes the message."""
    return evaluate(condition, message) is True


def evaluate(node: Node, message: RoutedMessage) -> Any:
    """The JSON value (or UNDEFINED) the expression has for this message."""
    if isinstance(node, Literal):
        return node.value
    if isinstance(node, Reference):
        return _reference(node, message)
    if isinstance(node, Call):
        return _call(node.name, [evaluate(arg, message) for arg in node.args])
    if isinstance(node, Unary):
        operand = evaluate(node.operand, message)
        if node.op == "NOT":
            return (not operand) if isinstance(operand, bool) else UNDEFINED
        return -operand if _is_number(operand) else UNDEFINED
    left = evaluate(node.left, message)
    if node.op in {"AND", "OR"}:
        # Short-circuit as Kleene logic allows: false AND x, true OR x.
        if node.op == "AND" and left is False:
            return False
        if node.op == "OR" and left is True:
            return True
        right = evaluate(node.right, message)
        return _logic(node.op, left, right)
    right = evaluate(node.right, message)
    if node.op in _ORDER:
        return _compare(node.op, left, right)
    return _arithmetic(node.op, left, right)


def _reference(node: Reference, message: RoutedMessage) -> Any:
    if node.kind == "app":
        return message.app_property(node.name)
    if node.kind == "system":
        return message.system_property(node.name)
    if not node.path:
        # "You can't run queries or functions on the entire body reference."
        return UNDEFINED
    if node.kind == "body":
        return lookup(message.json_body, node.path)
    return lookup(message.twin_document, node.path, ignore_case=True)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _logic(op: str, left: Any, right: Any) -> Any:
    if op == "AND":
        if right is False:
            return False
        return True if left is True and right is True else UNDEFINED
    if right is True:
        return True
    return False if left is False and right is False else UNDEFINED


def _compare(op: str, left: Any, right: Any) -> Any:
    if _is_number(left) and _is_number(right):
        return _ORDER[op](left, right)
    same = type(left) is type(right) and isinstance(left, str | bool)
    if same:
        return _ORDER[op](left, right)
    if left is None and right is None and op in {"=", "!=", "<>"}:
        return op == "="
    return UNDEFINED


def _arithmetic(op: str, left: Any, right: Any) -> Any:
    if not (_is_number(left) and _is_number(right)):
        return UNDEFINED
    if op in {"/", "%"} and right == 0:
        return UNDEFINED
    if op == "%":
        # .NET's remainder takes the dividend's sign, as AWS's mod() does; Python's does not.
        remainder = math.fmod(left, right)
        return int(remainder) if isinstance(left, int) and isinstance(right, int) else remainder
    result = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv}[op](
        left, right
    )
    return _finite(result)


def _finite(value: Any) -> Any:
    return UNDEFINED if isinstance(value, float) and not math.isfinite(value) else value


def _type_check(name: str, value: Any) -> bool:
    checks: dict[str, Callable[[Any], bool]] = {
        "IS_DEFINED": lambda v: v is not UNDEFINED,
        "IS_ARRAY": lambda v: isinstance(v, list),
        "IS_BOOL": lambda v: isinstance(v, bool),
        "IS_NULL": lambda v: v is None,
        "IS_NUMBER": _is_number,
        "IS_OBJECT": lambda v: isinstance(v, dict),
        "IS_PRIMITIVE": lambda v: v is None or isinstance(v, str | bool) or _is_number(v),
        "IS_STRING": lambda v: isinstance(v, str),
    }
    return checks[name](value)


def _as_number(value: Any) -> Any:
    if _is_number(value):
        return value
    if not isinstance(value, str):
        return UNDEFINED
    for parse in (int, float):
        try:
            return _finite(parse(value))
        except ValueError:
            continue
    return UNDEFINED


_MATH: dict[str, Callable[..., Any]] = {
    "ABS": abs,
    "EXP": math.exp,
    "SQUARE": lambda x: x * x,
    "CEILING": math.ceil,
    "FLOOR": math.floor,
    "SIGN": lambda x: (x > 0) - (x < 0),
    "SQRT": math.sqrt,
    "POWER": math.pow,
}
_STRING: dict[str, Callable[..., Any]] = {
    "CONCAT": lambda *parts: "".join(parts),
    "LENGTH": len,
    "LOWER": str.lower,
    "UPPER": str.upper,
    "INDEX_OF": str.find,
    "STARTS_WITH": str.startswith,
    "ENDS_WITH": str.endswith,
    "CONTAINS": operator.contains,
}


def _call(name: str, args: list[Any]) -> Any:
    if name.startswith("IS_"):
        return _type_check(name, args[0])
    if name == "AS_NUMBER":
        return _as_number(args[0])
    if name in _MATH:
        if not all(_is_number(arg) for arg in args):
            return UNDEFINED
        try:
            return _finite(_MATH[name](*args))
        except (ValueError, OverflowError, ZeroDivisionError):
            return UNDEFINED
    if name == "SUBSTRING":
        return _substring(args)
    if not all(isinstance(arg, str) for arg in args):
        return UNDEFINED
    return _STRING[name](*args)


def _substring(args: list[Any]) -> Any:
    text, start = args[0], args[1]
    length = args[2] if len(args) > 2 else None
    numbers = [start] if length is None else [start, length]
    if not isinstance(text, str) or not all(_is_number(n) and n == int(n) for n in numbers):
        return UNDEFINED
    begin = max(0, int(start))
    if length is None:
        return text[begin:]
    return text[begin : begin + max(0, int(length))]
