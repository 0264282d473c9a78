"""The subset of IoT Hub's query language a migration uses, parsed without eval.

Supported: `SELECT *` from `devices` or `devices.modules`; projections such as
`SELECT deviceId, tags.site AS site, COUNT() AS n` (a column is named by its alias or its
last path segment, and left out when undefined); `GROUP BY` property paths; and a WHERE
clause of comparisons (`= != <> < <= > >=`) between property paths (`deviceId`,
`tags.site.floor`, `properties.desired.x`, `status`, ...) and literals (strings in single
or double quotes, numbers, `true`, `false`, `null`), `IN [...]` and `NIN [...]`, `AND`,
`OR`, `NOT`, parentheses, and the functions `IS_DEFINED`, `IS_NULL`, `STARTSWITH`,
`ENDSWITH`. Keywords are case-insensitive, property names are not. Evaluation lives in
`query_eval`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from bridge_sim.iothub.query_eval import UNDEFINED, Node, QueryError, evaluate, lookup

__all__ = ["Query", "QueryError", "SelectItem", "parse_query"]


_TOKEN = re.compile(
    r"""\s*(?:
        (?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
      | (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
      | (?P<op><>|!=|<=|>=|=|<|>)
      | (?P<punct>[()\[\],.*])
      | (?P<name>[A-Za-z_$][A-Za-z0-9_$]*)
    )""",
    re.VERBOSE,
)
_KEYWORDS = frozenset(
    {
        "select",
        "from",
        "where",
        "group",
        "by",
        "and",
        "or",
        "not",
        "in",
        "nin",
        "as",
        "true",
        "false",
        "null",
    }
)
_FUNCTIONS = frozenset({"is_defined", "is_null", "startswith", "endswith"})
_SOURCES = {("devices",): "devices", ("devices", "modules"): "devices.modules"}
# How deep NOT, parentheses and function calls may nest: beyond any real query, and well
# inside Python's recursion limit for the parser and the evaluator.
MAX_DEPTH = 64


@dataclass(frozen=True)
class _Token:
    kind: str  # number, string, op, punct, name, keyword, end
    text: str
    position: int
    value: Any = None


def _unescape(quoted: str) -> str:
    return re.sub(r"\\(.)", r"\1", quoted[1:-1])


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise QueryError(f"Syntax error at position {position}: unexpected character")
        kind = match.lastgroup or ""
        raw = match.group(kind)
        start = match.start(kind)
        if kind == "number":
            number = float(raw)
            tokens.append(_Token(kind, raw, start, int(number) if number.is_integer() else number))
        elif kind == "string":
            tokens.append(_Token(kind, raw, start, _unescape(raw)))
        elif kind == "name" and raw.lower() in _KEYWORDS:
            tokens.append(_Token("keyword", raw.lower(), start))
        else:
            tokens.append(_Token(kind, raw, start))
        position = match.end()
    tokens.append(_Token("end", "", len(text)))
    return tokens


@dataclass(frozen=True)
class SelectItem:
    """One projected column: a property path, or COUNT() when `path` is None."""

    path: tuple[str, ...] | None
    alias: str


@dataclass(frozen=True)
class Query:
    """A parsed query: source, projection (None for `*`), filter and grouping."""

    source: str  # "devices" or "devices.modules"
    where: Node | None
    select: tuple[SelectItem, ...] | None = None
    group_by: tuple[tuple[str, ...], ...] = ()

    @property
    def projects(self) -> bool:
        """True when rows are projections (`JSON` items), not whole twins."""
        return self.select is not None

    def matches(self, document: dict[str, Any]) -> bool:
        """True when the WHERE clause is true for `document` (a twin's JSON)."""
        return self.where is None or evaluate(self.where, document) is True

    def run(self, documents: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Filter `documents`, then project, count or group them as the query says."""
        selected = [document for document in documents if self.matches(document)]
        if self.select is None:
            return selected
        counting = any(item.path is None for item in self.select)
        if self.group_by:
            groups: dict[str, list[dict[str, Any]]] = {}
            for document in selected:
                key = repr([lookup(document, path) for path in self.group_by])
                groups.setdefault(key, []).append(document)
            return [self._row(rows[0], len(rows)) for rows in groups.values()]
        if counting:
            return [self._row({}, len(selected))]
        return [self._row(document, 0) for document in selected]

    def _row(self, document: dict[str, Any], count: int) -> dict[str, Any]:
        row: dict[str, Any] = {}
        for item in self.select or ():
            value = count if item.path is None else lookup(document, item.path)
            if value is not UNDEFINED:
                row[item.alias] = value
        return row


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokenize(text)
        self.index = 0
        self.depth = 0

    def _enter(self) -> None:
        # A QueryError abandons the whole parse, so `_leave` is only needed on success.
        self.depth += 1
        if self.depth > MAX_DEPTH:
            token = self.current
            raise QueryError(
                f"Syntax error at position {token.position}: "
                f"expression nested more than {MAX_DEPTH} levels deep"
            )

    def _leave(self) -> None:
        self.depth -= 1

    @property
    def current(self) -> _Token:
        return self.tokens[self.index]

    def _fail(self, expected: str) -> QueryError:
        token = self.current
        found = "end of query" if token.kind == "end" else repr(token.text)
        return QueryError(
            f"Syntax error at position {token.position}: expected {expected}, found {found}"
        )

    def _advance(self) -> _Token:
        token = self.current
        self.index += 1
        return token

    def _accept(self, kind: str, text: str | None = None) -> _Token | None:
        token = self.current
        if token.kind == kind and (text is None or token.text == text):
            return self._advance()
        return None

    def _expect(self, kind: str, text: str | None = None) -> _Token:
        token = self._accept(kind, text)
        if token is None:
            raise self._fail(text or kind)
        return token

    def parse(self) -> Query:
        self._expect("keyword", "select")
        select = None if self._accept("punct", "*") else self._select_list()
        self._expect("keyword", "from")
        source = self._source()
        where = self._or() if self._accept("keyword", "where") else None
        group_by: list[tuple[str, ...]] = []
        if self._accept("keyword", "group"):
            self._expect("keyword", "by")
            group_by.append(self._path())
            while self._accept("punct", ","):
                group_by.append(self._path())
        if self.current.kind != "end":
            raise self._fail("end of query")
        return Query(source=source, where=where, select=select, group_by=tuple(group_by))

    def _select_list(self) -> tuple[SelectItem, ...]:
        items = [self._select_item()]
        while self._accept("punct", ","):
            items.append(self._select_item())
        return tuple(items)

    def _select_item(self) -> SelectItem:
        token = self.current
        path: tuple[str, ...] | None
        if token.kind == "name" and token.text.lower() == "count":
            self._advance()
            self._expect("punct", "(")
            self._expect("punct", ")")
            path, default_alias = None, "numberOfDevices"
        elif token.kind == "name":
            path = self._path()
            default_alias = path[-1]
        else:
            raise self._fail("'*', COUNT() or a property")
        alias = self._expect("name").text if self._accept("keyword", "as") else default_alias
        return SelectItem(path, alias)

    def _source(self) -> str:
        segments = [self._expect("name").text.lower()]
        while self._accept("punct", "."):
            segments.append(self._expect("name").text.lower())
        source = _SOURCES.get(tuple(segments))
        if source is None:
            raise QueryError(f"Unsupported collection '{'.'.join(segments)}'")
        return source

    def _or(self) -> Node:
        node = self._and()
        while self._accept("keyword", "or"):
            node = ("or", node, self._and())
        return node

    def _and(self) -> Node:
        node = self._not()
        while self._accept("keyword", "and"):
            node = ("and", node, self._not())
        return node

    def _not(self) -> Node:
        if self._accept("keyword", "not"):
            self._enter()
            node = ("not", self._not())
            self._leave()
            return node
        return self._comparison()

    def _comparison(self) -> Node:
        left = self._operand()
        if left[0] == "call" or (left[0] == "group"):
            return left[1] if left[0] == "group" else left
        if op := self._accept("op"):
            return ("compare", "!=" if op.text == "<>" else op.text, left, self._operand())
        negated = self._accept("keyword", "nin") is not None
        if negated or self._accept("keyword", "in"):
            return ("in", negated, left, self._list())
        # A bare boolean operand, e.g. `WHERE properties.desired.enabled`.
        return ("compare", "=", left, ("literal", True))

    def _list(self) -> tuple[Any, ...]:
        self._expect("punct", "[")
        values: list[Any] = []
        if not self._accept("punct", "]"):
            values.append(self._literal())
            while self._accept("punct", ","):
                values.append(self._literal())
            self._expect("punct", "]")
        return tuple(values)

    def _literal(self) -> Any:
        token = self.current
        if token.kind in {"number", "string"}:
            self._advance()
            return token.value
        if token.kind == "keyword" and token.text in {"true", "false", "null"}:
            self._advance()
            return {"true": True, "false": False, "null": None}[token.text]
        raise self._fail("a literal")

    def _operand(self) -> Node:
        token = self.current
        if self._accept("punct", "("):
            self._enter()
            inner = self._or()
            self._expect("punct", ")")
            self._leave()
            return ("group", inner)
        if token.kind == "name" and token.text.lower() in _FUNCTIONS:
            return self._call()
        if token.kind == "name":
            return ("path", self._path())
        return ("literal", self._literal())

    def _path(self) -> tuple[str, ...]:
        segments = [self._expect("name").text]
        while True:
            if self._accept("punct", "."):
                # After a dot any word is a property name, keywords included (`tags.group`).
                segment = self._accept("name") or self._expect("keyword")
                segments.append(segment.text)
            elif self._accept("punct", "["):
                # `tags['my-key']` reaches keys that are not identifiers.
                segments.append(self._expect("string").value)
                self._expect("punct", "]")
            else:
                return tuple(segments)

    def _call(self) -> Node:
        name = self._advance().text.lower()
        self._expect("punct", "(")
        self._enter()
        args = [self._operand()]
        while self._accept("punct", ","):
            args.append(self._operand())
        self._expect("punct", ")")
        self._leave()
        arity = 1 if name.startswith("is_") else 2
        if len(args) != arity:
            raise QueryError(f"{name.upper()} takes {arity} argument(s), got {len(args)}")
        return ("call", name, tuple(args))


def parse_query(text: str) -> Query:
    """Parse `text`; raise QueryError with a position when it is not valid."""
    if not text or not text.strip():
        raise QueryError("The query is empty")
    return _Parser(text).parse()
