"""IoT Hub's message routing query language, parsed as IoT Hub does when a route is saved.

The grammar is Microsoft's "IoT Hub message routing query syntax" and the expressions section
of the IoT Hub query language: literals (numbers, hexadecimal numbers, strings in single or
double quotes with `\\'`, `\\"`, `\\\\` and `\\uXXXX` escapes, `true`, `false`, `null`,
`undefined`), application properties by bare name, system properties with `$`
(`$contentType`, `$connectionDeviceId`, ...), `$body.a.b[0]`, `$twin.tags.x` and
`$twin.properties.desired|reported.x`, the documented functions, arithmetic
(`+ - * / %`), comparisons (`= != <> < <= > >=`), `AND`, `OR`, `NOT` and parentheses.
Keywords and function names are case-insensitive. Anything else is refused with the reason,
as IoT Hub refuses to save a route whose condition does not parse.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from bridge_sim.iothub.routing.values import UNDEFINED

__all__ = [
    "FUNCTIONS",
    "Binary",
    "Call",
    "Literal",
    "Node",
    "Reference",
    "RouteQueryError",
    "Unary",
    "parse_condition",
]


class RouteQueryError(ValueError):
    """Raised for a route condition IoT Hub would refuse to save; the message says why."""


@dataclass(frozen=True, slots=True)
class Literal:
    """A constant; `value` is UNDEFINED for the `undefined` keyword."""

    value: object


@dataclass(frozen=True, slots=True)
class Reference:
    """A value read from the message: `app`, `system` (name), `body` or `twin` (path)."""

    kind: str
    name: str
    path: tuple[str | int, ...] = ()


@dataclass(frozen=True, slots=True)
class Call:
    """A built-in function call; `name` is upper case."""

    name: str
    args: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Unary:
    """`NOT x` or `-x`."""

    op: str
    operand: Node


@dataclass(frozen=True, slots=True)
class Binary:
    """`AND`, `OR`, a comparison or an arithmetic operator."""

    op: str
    left: Node
    right: Node


Node = Literal | Reference | Call | Unary | Binary

# Documented routing functions: name -> (fewest, most) arguments; None is unbounded.
FUNCTIONS: dict[str, tuple[int, int | None]] = {
    **dict.fromkeys(("ABS", "EXP", "SQUARE", "CEILING", "FLOOR", "SIGN", "SQRT"), (1, 1)),
    "POWER": (2, 2),
    **dict.fromkeys(
        ("AS_NUMBER", "IS_ARRAY", "IS_BOOL", "IS_DEFINED", "IS_NULL", "IS_NUMBER"), (1, 1)
    ),
    **dict.fromkeys(("IS_OBJECT", "IS_PRIMITIVE", "IS_STRING"), (1, 1)),
    "CONCAT": (2, None),
    **dict.fromkeys(("LENGTH", "LOWER", "UPPER"), (1, 1)),
    "SUBSTRING": (2, 3),
    **dict.fromkeys(("INDEX_OF", "STARTS_WITH", "ENDS_WITH", "CONTAINS"), (2, 2)),
}
COMPARISONS = frozenset({"=", "!=", "<>", "<", "<=", ">", ">="})
_CONSTANTS: dict[str, object] = {"true": True, "false": False, "null": None}
_MAX_DEPTH = 64
_TOKEN = re.compile(
    r"""\s*(?:
        (?P<hex>0[xX][0-9A-Fa-f]+)
      | (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
      | (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
      | (?P<op><>|!=|<=|>=|[=<>+\-*/%(),.\[\]])
      | (?P<name>\$[A-Za-z_][A-Za-z0-9_\-]*|[A-Za-z_][A-Za-z0-9_]*)
    )""",
    re.VERBOSE,
)
_ESCAPE = re.compile(r"\\(u[0-9A-Fa-f]{4}|['\"\\])|\\(.)")


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # hex, number, string, op, name, end
    text: str
    position: int


def _unescape(quoted: str, position: int) -> str:
    def replace(match: re.Match[str]) -> str:
        if match[2] is not None:
            raise RouteQueryError(f"unsupported escape \\{match[2]} in string at {position}")
        escape = match[1]
        return chr(int(escape[1:], 16)) if escape[0] == "u" else escape

    return _ESCAPE.sub(replace, quoted[1:-1])


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    while text[position:].strip():
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise RouteQueryError(f"unexpected character {text[position:].lstrip()[:1]!r}")
        kind = match.lastgroup or "end"
        tokens.append(_Token(kind, match[kind], match.start(kind)))
        position = match.end()
    tokens.append(_Token("end", "", len(text)))
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokenize(text)
        self.index = 0
        self.depth = 0

    @property
    def current(self) -> _Token:
        return self.tokens[self.index]

    def fail(self, what: str) -> RouteQueryError:
        token = self.current
        found = "the end of the condition" if token.kind == "end" else repr(token.text)
        return RouteQueryError(f"{what} at position {token.position}, found {found}")

    def take(self, text: str) -> bool:
        token = self.current
        if token.kind in {"op", "name"} and token.text.upper() == text:
            self.index += 1
            return True
        return False

    def expect(self, text: str) -> None:
        if not self.take(text):
            raise self.fail(f"expected {text!r}")

    def parse(self) -> Node:
        node = self.disjunction()
        if self.current.kind != "end":
            raise self.fail("expected an operator or the end")
        return node

    def nested(self, parse: Callable[[], Node]) -> Node:
        self.depth += 1
        if self.depth > _MAX_DEPTH:
            raise RouteQueryError(f"the condition nests deeper than {_MAX_DEPTH} levels")
        node = parse()
        self.depth -= 1
        return node

    def disjunction(self) -> Node:
        node = self.conjunction()
        while self.take("OR"):
            node = Binary("OR", node, self.conjunction())
        return node

    def conjunction(self) -> Node:
        node = self.negation()
        while self.take("AND"):
            node = Binary("AND", node, self.negation())
        return node

    def negation(self) -> Node:
        if self.take("NOT"):
            return Unary("NOT", self.nested(self.negation))
        return self.comparison()

    def comparison(self) -> Node:
        node = self.additive()
        token = self.current
        if token.kind == "op" and token.text in COMPARISONS:
            self.index += 1
            node = Binary(token.text, node, self.additive())
            if self.current.kind == "op" and self.current.text in COMPARISONS:
                raise self.fail("comparisons do not chain")
        return node

    def additive(self) -> Node:
        node = self.multiplicative()
        while self.current.kind == "op" and self.current.text in {"+", "-"}:
            op = self.current.text
            self.index += 1
            node = Binary(op, node, self.multiplicative())
        return node

    def multiplicative(self) -> Node:
        node = self.unary()
        while self.current.kind == "op" and self.current.text in {"*", "/", "%"}:
            op = self.current.text
            self.index += 1
            node = Binary(op, node, self.unary())
        return node

    def unary(self) -> Node:
        if self.current.kind == "op" and self.current.text == "-":
            self.index += 1
            return Unary("-", self.nested(self.unary))
        return self.primary()

    def primary(self) -> Node:
        token = self.current
        if token.kind == "end":
            raise self.fail("expected a value")
        self.index += 1
        if token.kind == "hex":
            return Literal(int(token.text, 16))
        if token.kind == "number":
            number = float(token.text)
            return Literal(int(number) if number.is_integer() and "." not in token.text else number)
        if token.kind == "string":
            return Literal(_unescape(token.text, token.position))
        if token.kind == "op" and token.text == "(":
            node = self.nested(self.disjunction)
            self.expect(")")
            return node
        if token.kind == "name":
            return self.name(token)
        self.index -= 1
        raise self.fail("expected a value")

    def name(self, token: _Token) -> Node:
        lowered = token.text.lower()
        if lowered in _CONSTANTS:
            return Literal(_CONSTANTS[lowered])
        if lowered == "undefined":
            return Literal(UNDEFINED)
        if lowered in {"and", "or", "not"}:
            self.index -= 1
            raise self.fail("expected a value")
        if self.current.kind == "op" and self.current.text == "(":
            return self.call(token)
        if lowered in {"$body", "$twin"}:
            return Reference(lowered[1:], token.text, self.path())
        if self.current.kind == "op" and self.current.text in {".", "["}:
            raise self.fail(f"{token.text!r} is a property name and has no members")
        return Reference("system" if token.text.startswith("$") else "app", token.text)

    def path(self) -> tuple[str | int, ...]:
        steps: list[str | int] = []
        while True:
            if self.take("."):
                token = self.current
                if token.kind != "name" or token.text.startswith("$"):
                    raise self.fail("expected a property name after '.'")
                steps.append(token.text)
                self.index += 1
            elif self.take("["):
                token = self.current
                if token.kind != "number" or not token.text.isdigit():
                    raise self.fail("expected an array index")
                steps.append(int(token.text))
                self.index += 1
                self.expect("]")
            else:
                return tuple(steps)

    def call(self, token: _Token) -> Node:
        name = token.text.upper()
        if name not in FUNCTIONS:
            raise RouteQueryError(
                f"unknown function {token.text!r} at position {token.position}; routing "
                f"conditions support {', '.join(sorted(FUNCTIONS))}"
            )
        self.expect("(")
        args: list[Node] = []
        if not self.take(")"):
            args.append(self.nested(self.disjunction))
            while self.take(","):
                args.append(self.nested(self.disjunction))
            self.expect(")")
        fewest, most = FUNCTIONS[name]
        if len(args) < fewest or (most is not None and len(args) > most):
            wanted = str(fewest) if fewest == most else f"{fewest} or more"
            if most is not None and most != fewest:
                wanted = f"{fewest} to {most}"
            raise RouteQueryError(f"{name} takes {wanted} arguments, not {len(args)}")
        return Call(name, tuple(args))


def parse_condition(text: str) -> Node:
    """Parse a route condition; RouteQueryError says why IoT Hub would refuse it."""
    if not text.strip():
        raise RouteQueryError("the condition is empty")
    return _Parser(text).parse()
