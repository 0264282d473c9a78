"""Recursive-descent parser for AWS IoT SQL rule statements (no eval, no regex tricks)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from bridge.errors import RuleSqlError
from bridge.plan.rules.ast import (
    Access,
    Binary,
    Call,
    Case,
    Cast,
    Expr,
    Field,
    Literal,
    NestedSelect,
    RuleQuery,
    SelectItem,
    Unary,
    Wildcard,
)
from bridge.plan.rules.lexer import Token, tokenize

__all__ = ["parse_rule_sql"]

_COMPARISONS = frozenset({"=", "<>", "!=", "<", "<=", ">", ">="})
# How deep NOT, unary minus, parentheses, calls and CASE may nest: far beyond any real rule,
# and well inside Python's recursion limit (each level costs about ten frames).
MAX_DEPTH = 64


def parse_rule_sql(sql: str) -> RuleQuery:
    """Parse `SELECT ... FROM 'topic/filter' [WHERE ...]`, raising `RuleSqlError` when malformed."""
    return _Parser(sql).statement()


class _Parser:
    """One parser per statement; `index` walks the token list."""

    def __init__(self, sql: str) -> None:
        self.sql = sql
        self.tokens = tokenize(sql)
        self.index = 0
        self.depth = 0

    # -- token helpers -------------------------------------------------------------------

    @property
    def current(self) -> Token:
        return self.tokens[self.index]

    def error(self, message: str, token: Token | None = None) -> RuleSqlError:
        where = token or self.current
        return RuleSqlError(message, sql=self.sql, position=where.position)

    def describe(self, token: Token) -> str:
        return "end of statement" if token.kind == "EOF" else repr(token.text)

    def at(self, kind: str, text: str | None = None) -> bool:
        token = self.current
        return token.kind == kind and (text is None or token.text == text)

    def accept(self, kind: str, text: str | None = None) -> Token | None:
        if self.at(kind, text):
            token = self.current
            self.index += 1
            return token
        return None

    def expect(self, kind: str, text: str, what: str) -> Token:
        token = self.accept(kind, text)
        if token is None:
            raise self.error(f"expected {what}, found {self.describe(self.current)}")
        return token

    @contextlib.contextmanager
    def nested(self) -> Iterator[None]:
        # A raise abandons the whole parse, so depth needs no restoring on the way out.
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error(f"the expression nests more than {MAX_DEPTH} levels deep")
        yield
        self.depth -= 1

    # -- statement -----------------------------------------------------------------------

    def statement(self) -> RuleQuery:
        if not self.at("KEYWORD", "SELECT"):
            raise self.error(f"expected SELECT, found {self.describe(self.current)}")
        self.index += 1
        items = self.select_list()
        if not self.at("KEYWORD", "FROM"):
            raise self.error(
                f"expected FROM after the SELECT list, found {self.describe(self.current)}"
            )
        self.index += 1
        topic_token = self.current
        if topic_token.kind != "STRING":
            raise self.error("expected a quoted topic filter after FROM")
        self.index += 1
        _check_topic_filter(self, topic_token)
        where = self.expression() if self.accept("KEYWORD", "WHERE") else None
        if not self.at("EOF"):
            raise self.error(f"unexpected {self.describe(self.current)} after the statement")
        return RuleQuery(tuple(items), topic_token.text, where)

    def select_list(self) -> list[SelectItem]:
        items = [self.select_item()]
        while self.accept("PUNCT", ","):
            items.append(self.select_item())
        return items

    def select_item(self) -> SelectItem:
        star = self.accept("OP", "*")
        if star is not None:
            return SelectItem(Wildcard((), star.position), None)
        if self.at("KEYWORD", "FROM"):
            raise self.error("expected a SELECT item before FROM")
        expr = self.expression(allow_wildcard=True)
        alias = None
        if self.accept("KEYWORD", "AS"):
            name = self.accept("IDENT") or self.accept("STRING")
            if name is None:
                raise self.error("expected an alias name after AS")
            alias = name.text
        return SelectItem(expr, alias)

    # -- expressions, lowest precedence first ------------------------------------------

    def expression(self, *, allow_wildcard: bool = False) -> Expr:
        self.allow_wildcard = allow_wildcard
        return self.disjunction()

    def disjunction(self) -> Expr:
        left = self.conjunction()
        while (token := self.accept("KEYWORD", "OR")) is not None:
            left = Binary("OR", left, self.conjunction(), token.position)
        return left

    def conjunction(self) -> Expr:
        left = self.negation()
        while (token := self.accept("KEYWORD", "AND")) is not None:
            left = Binary("AND", left, self.negation(), token.position)
        return left

    def negation(self) -> Expr:
        token = self.accept("KEYWORD", "NOT")
        if token is not None:
            with self.nested():
                return Unary("NOT", self.negation(), token.position)
        return self.comparison()

    def comparison(self) -> Expr:
        left = self.additive()
        token = self.current
        if token.kind == "OP" and token.text in _COMPARISONS:
            self.index += 1
            right = self.additive()
            if self.current.kind == "OP" and self.current.text in _COMPARISONS:
                raise self.error("comparisons cannot be chained; combine them with AND")
            return Binary(token.text, left, right, token.position)
        if self.accept("KEYWORD", "IN"):
            return Binary("IN", left, self.additive(), token.position)
        return left

    def additive(self) -> Expr:
        left = self.multiplicative()
        while self.current.kind == "OP" and self.current.text in {"+", "-"}:
            token = self.current
            self.index += 1
            left = Binary(token.text, left, self.multiplicative(), token.position)
        return left

    def multiplicative(self) -> Expr:
        left = self.unary()
        while self.current.kind == "OP" and self.current.text in {"*", "/", "%"}:
            token = self.current
            self.index += 1
            left = Binary(token.text, left, self.unary(), token.position)
        return left

    def unary(self) -> Expr:
        token = self.accept("OP", "-")
        if token is not None:
            with self.nested():
                operand = self.unary()
            value = operand.value if isinstance(operand, Literal) else None
            if isinstance(value, int | float) and not isinstance(value, bool):
                return Literal(-value, token.position)
            return Unary("-", operand, token.position)
        with self.nested():
            return self.postfix(self.primary())

    def postfix(self, base: Expr) -> Expr:
        path: list[str | int] = []
        while True:
            if self.accept("PUNCT", "."):
                star = self.accept("OP", "*")
                if star is not None:
                    if not self.allow_wildcard:
                        raise self.error("'.*' is only allowed in the SELECT list", star)
                    return _with_path(base, path, wildcard=True)
                name = self.accept("IDENT") or self.accept("KEYWORD")
                if name is None:
                    raise self.error("expected a field name after '.'")
                path.append(name.text)
            elif self.accept("PUNCT", "["):
                index = self.accept("NUMBER")
                if index is None or not index.text.isdigit():
                    raise self.error("expected an integer array index inside [ ]")
                path.append(int(index.text))
                self.expect("PUNCT", "]", "']'")
            else:
                return _with_path(base, path, wildcard=False)

    def primary(self) -> Expr:
        token = self.current
        self.index += 1
        if token.kind == "STRING":
            return Literal(token.text, token.position)
        if token.kind == "NUMBER":
            is_float = any(mark in token.text for mark in ".eE")
            return Literal(float(token.text) if is_float else int(token.text), token.position)
        if token.kind == "KEYWORD" and token.text in {"TRUE", "FALSE", "NULL"}:
            constants = {"TRUE": True, "FALSE": False, "NULL": None}
            return Literal(constants[token.text], token.position)
        if token.kind == "KEYWORD" and token.text == "CASE":
            return self.case(token)
        if token.kind == "PUNCT" and token.text == "(":
            if self.at("KEYWORD", "SELECT"):
                return self.nested_select(token)
            inner = self.expression(allow_wildcard=False)
            self.expect("PUNCT", ")", "')'")
            return inner
        if token.kind == "IDENT":
            if self.accept("PUNCT", "("):
                return self.call(token)
            return Field((token.text,), token.position)
        self.index -= 1
        raise self.error(f"expected an expression, found {self.describe(token)}")

    def call(self, name: Token) -> Expr:
        if name.text.lower() == "cast":
            operand = self.expression()
            self.expect("KEYWORD", "AS", "AS in cast(value AS type)")
            type_name = self.accept("IDENT")
            if type_name is None:
                raise self.error("expected a type name in cast(value AS type)")
            self.expect("PUNCT", ")", "')'")
            return Cast(operand, type_name.text, name.position)
        args: list[Expr] = []
        if not self.accept("PUNCT", ")"):
            args.append(self.argument())
            while self.accept("PUNCT", ","):
                args.append(self.argument())
            self.expect("PUNCT", ")", f"')' to close {name.text}(")
        return Call(name.text, tuple(args), name.position)

    def argument(self) -> Expr:
        # `*` stands for the whole payload in calls such as encode(*, 'base64').
        star = self.accept("OP", "*")
        return Wildcard((), star.position) if star is not None else self.expression()

    def case(self, start: Token) -> Expr:
        operand = None if self.at("KEYWORD", "WHEN") else self.expression()
        branches: list[tuple[Expr, Expr]] = []
        while self.accept("KEYWORD", "WHEN"):
            condition = self.expression()
            self.expect("KEYWORD", "THEN", "THEN")
            branches.append((condition, self.expression()))
        if not branches:
            raise self.error("CASE needs at least one WHEN ... THEN ...")
        default = self.expression() if self.accept("KEYWORD", "ELSE") else None
        self.expect("KEYWORD", "END", "END to close CASE")
        return Case(operand, tuple(branches), default, start.position)

    def nested_select(self, start: Token) -> Expr:
        self.index += 1
        items = self.select_list()
        self.expect("KEYWORD", "FROM", "FROM in the nested SELECT")
        source = self.expression()
        where = self.expression() if self.accept("KEYWORD", "WHERE") else None
        self.expect("PUNCT", ")", "')' to close the nested SELECT")
        return NestedSelect(tuple(items), source, where, start.position)


def _with_path(base: Expr, path: list[str | int], *, wildcard: bool) -> Expr:
    if isinstance(base, Field):
        full = (*base.path, *path)
        return Wildcard(full, base.position) if wildcard else Field(full, base.position)
    if wildcard:
        return Wildcard(tuple(path), base.position)
    return Access(base, tuple(path), base.position) if path else base


def _check_topic_filter(parser: _Parser, token: Token) -> None:
    levels = token.text.split("/")
    if not token.text:
        raise parser.error("the topic filter is empty", token)
    for number, level in enumerate(levels, start=1):
        if "#" in level and (level != "#" or number != len(levels)):
            raise parser.error(
                "'#' must be a whole level and the last one of the topic filter", token
            )
        if "+" in level and level != "+":
            raise parser.error("'+' must be a whole level of the topic filter", token)
