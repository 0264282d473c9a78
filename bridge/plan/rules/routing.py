"""Syntax tree and renderer for the IoT Hub message routing query language (the subset we emit)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

__all__ = [
    "FALSE",
    "TRUE",
    "And",
    "Arith",
    "Body",
    "Compare",
    "Const",
    "Func",
    "Not",
    "Or",
    "Prop",
    "RouteExpr",
    "all_of",
    "any_of",
    "negate",
    "render",
]

# Routing queries accept plain identifiers for property names and body path steps.
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True, slots=True)
class Const:
    """A literal: string, number, true, false or null."""

    value: str | int | float | bool | None


@dataclass(frozen=True, slots=True)
class Prop:
    """An application property by name, such as `awsTopic2`, or a system one like `$contentType`."""

    name: str


@dataclass(frozen=True, slots=True)
class Body:
    """A path into the JSON message body: `$body.a.b`."""

    path: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Func:
    """A built-in function call such as `STARTS_WITH(awsTopic, 'dt/')`."""

    name: str
    args: tuple[RouteExpr, ...]


@dataclass(frozen=True, slots=True)
class Arith:
    """A binary arithmetic operation."""

    op: str
    left: RouteExpr
    right: RouteExpr


@dataclass(frozen=True, slots=True)
class Compare:
    """A comparison between two values."""

    op: str
    left: RouteExpr
    right: RouteExpr


@dataclass(frozen=True, slots=True)
class Not:
    """Logical negation."""

    operand: RouteExpr


@dataclass(frozen=True, slots=True)
class And:
    """Conjunction of two or more conditions."""

    items: tuple[RouteExpr, ...]


@dataclass(frozen=True, slots=True)
class Or:
    """Disjunction of two or more conditions."""

    items: tuple[RouteExpr, ...]


RouteExpr = Const | Prop | Body | Func | Arith | Compare | Not | And | Or

TRUE = Const(value=True)
FALSE = Const(value=False)


def all_of(*items: RouteExpr) -> RouteExpr:
    """AND the items, folding constants so relaxed sub-conditions disappear."""
    flat: list[RouteExpr] = []
    for item in items:
        if item == FALSE:
            return FALSE
        if item != TRUE:
            flat.extend(item.items if isinstance(item, And) else (item,))
    return TRUE if not flat else flat[0] if len(flat) == 1 else And(tuple(flat))


def any_of(*items: RouteExpr) -> RouteExpr:
    """OR the items, folding constants."""
    flat: list[RouteExpr] = []
    for item in items:
        if item == TRUE:
            return TRUE
        if item != FALSE:
            flat.extend(item.items if isinstance(item, Or) else (item,))
    return FALSE if not flat else flat[0] if len(flat) == 1 else Or(tuple(flat))


def negate(operand: RouteExpr) -> RouteExpr:
    """NOT the operand, folding constants and double negation."""
    if operand in {TRUE, FALSE}:
        return FALSE if operand == TRUE else TRUE
    return operand.operand if isinstance(operand, Not) else Not(operand)


# Binding strength: a child binding looser than its parent needs parentheses.
_OR, _AND, _NOT, _COMPARE, _ADD, _MUL, _ATOM = range(7)


def render(expr: RouteExpr) -> str:
    """Write the expression as IoT Hub routing query text."""
    return _render(expr)[0]


def _render(expr: RouteExpr) -> tuple[str, int]:
    if isinstance(expr, Const):
        return _literal(expr.value), _ATOM
    if isinstance(expr, Prop):
        return expr.name, _ATOM
    if isinstance(expr, Body):
        return "$body." + ".".join(expr.path), _ATOM
    if isinstance(expr, Func):
        return f"{expr.name}({', '.join(render(arg) for arg in expr.args)})", _ATOM
    if isinstance(expr, Arith):
        strength = _ADD if expr.op in {"+", "-"} else _MUL
        # Arithmetic is left-associative: a right operand of equal strength needs parentheses.
        left = _wrap(expr.left, strength)
        right = _wrap(expr.right, strength + 1)
        return f"{left} {expr.op} {right}", strength
    if isinstance(expr, Compare):
        left = _wrap(expr.left, _ADD)
        return f"{left} {expr.op} {_wrap(expr.right, _ADD)}", _COMPARE
    if isinstance(expr, Not):
        # Parenthesized unless atomic, so `NOT (a = 1)` reads the same to people and to IoT Hub.
        return f"NOT {_wrap(expr.operand, _ATOM)}", _NOT
    if isinstance(expr, And):
        return " AND ".join(_wrap(item, _NOT) for item in expr.items), _AND
    return " OR ".join(_wrap(item, _AND) for item in expr.items), _OR


def _wrap(expr: RouteExpr, needed: int) -> str:
    text, strength = _render(expr)
    return text if strength >= needed else f"({text})"


def _literal(value: str | float | bool | None) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f"'{value}'"
    # json.dumps writes numbers the way the routing language reads them (no 'inf', no 'L').
    return json.dumps(value)
