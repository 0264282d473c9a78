"""Syntax tree of an AWS IoT SQL statement, as produced by `bridge.plan.rules.sql`."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "Access",
    "Binary",
    "Call",
    "Case",
    "Cast",
    "Expr",
    "Field",
    "Literal",
    "NestedSelect",
    "RuleQuery",
    "SelectItem",
    "Unary",
    "Wildcard",
]

# A path step is an object key or an array index, as in `a.b[0].c`.
PathStep = str | int
LiteralValue = str | int | float | bool | None


@dataclass(frozen=True, slots=True)
class Literal:
    """A string, number, boolean or null literal."""

    value: LiteralValue
    position: int


@dataclass(frozen=True, slots=True)
class Field:
    """A reference into the JSON payload, such as `state.reported.temp` or `a[0]`."""

    path: tuple[PathStep, ...]
    position: int


@dataclass(frozen=True, slots=True)
class Wildcard:
    """`*` or `a.b.*` in a SELECT list: every key of the payload or of a nested object."""

    path: tuple[PathStep, ...]
    position: int


@dataclass(frozen=True, slots=True)
class Call:
    """A function call such as `topic(2)` or `startswith(name, 'gw-')`."""

    name: str
    args: tuple[Expr, ...]
    position: int


@dataclass(frozen=True, slots=True)
class Cast:
    """`cast(expr AS type)`."""

    operand: Expr
    type_name: str
    position: int


@dataclass(frozen=True, slots=True)
class Access:
    """A path applied to the result of an expression, such as `get(a, 0).b`."""

    base: Expr
    path: tuple[PathStep, ...]
    position: int


@dataclass(frozen=True, slots=True)
class Unary:
    """`NOT expr` or `-expr`."""

    op: str
    operand: Expr
    position: int


@dataclass(frozen=True, slots=True)
class Binary:
    """A logical, comparison, arithmetic or `IN` operation."""

    op: str
    left: Expr
    right: Expr
    position: int


@dataclass(frozen=True, slots=True)
class Case:
    """`CASE [operand] WHEN .. THEN .. [ELSE ..] END`."""

    operand: Expr | None
    branches: tuple[tuple[Expr, Expr], ...]
    default: Expr | None
    position: int


@dataclass(frozen=True, slots=True)
class NestedSelect:
    """A nested object query: `(SELECT v FROM arr WHERE ...)`."""

    items: tuple[SelectItem, ...]
    source: Expr
    where: Expr | None
    position: int


Expr = Literal | Field | Wildcard | Call | Cast | Access | Unary | Binary | Case | NestedSelect


@dataclass(frozen=True, slots=True)
class SelectItem:
    """One entry of a SELECT list, with its alias if it has one."""

    expr: Expr
    alias: str | None


@dataclass(frozen=True, slots=True)
class RuleQuery:
    """A whole rule statement: SELECT list, FROM topic filter and optional WHERE."""

    items: tuple[SelectItem, ...]
    topic_filter: str
    where: Expr | None

    @property
    def selects_whole_message(self) -> bool:
        """Whether the SELECT list is exactly `*`, so the payload passes through unchanged."""
        if len(self.items) != 1:
            return False
        only = self.items[0].expr
        return isinstance(only, Wildcard) and not only.path
