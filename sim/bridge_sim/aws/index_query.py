"""Fleet indexing query strings: the part of AWS IoT's query syntax the stand-in evaluates.

Supported, as AWS documents them (developer guide, "Query syntax"): `field:value` terms,
`*` and `?` wildcards (`thingName:*` matches every thing), `AND`, `OR`, `NOT`, the `-`
prefix, parentheses, AND as the default operator, case-insensitive values, at most twelve
terms, at most one term with a leading wildcard. Numbers compare as numbers.

Refused with InvalidQueryException because AWS refuses them: special characters
`` ` @ # % \\ / ' ; , ``, more than twelve terms, two leading wildcards. Refused because
the stand-in does not implement them (the message says so): terms without a field,
phrases, range searches and field grouping.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from moto.core.exceptions import JsonRESTError

__all__ = ["MAX_TERMS", "Query", "invalid_query", "parse_query"]

MAX_TERMS = 12
_SPECIAL = set("`@#%\\/';,")
_TOKENS = re.compile(r"\s*(\(|\)|[^\s()]+)")
# field -> the thing's values for it (strings, numbers or booleans), empty when absent
Fields = Callable[[str], Iterable[object]]
Predicate = Callable[[Fields], bool]


def invalid_query(message: str) -> Exception:
    """AWS's InvalidQueryException (HTTP 400), for moto to serialise."""
    error: Exception = JsonRESTError("InvalidQueryException", message)
    error.code = 400  # type: ignore[attr-defined]
    return error


@dataclass(frozen=True)
class Query:
    """A parsed query: `matches(fields)` says whether a thing is in the result."""

    text: str
    matches: Predicate
    matches_everything: bool


def _unsupported(what: str) -> Exception:
    return invalid_query(f"The AWS IoT stand-in does not support {what} in queries")


def _value_matcher(value: str) -> Callable[[object], bool]:
    if value == "*":
        return lambda _found: True
    number: float | None
    try:
        number = float(value)
    except ValueError:
        number = None
    pattern = re.compile(
        ".*".join(".".join(re.escape(p) for p in part.split("?")) for part in value.split("*")),
        re.IGNORECASE,
    )

    def matches(found: object) -> bool:
        if isinstance(found, bool):
            return pattern.fullmatch("true" if found else "false") is not None
        if isinstance(found, int | float):
            return number == found if number is not None else False
        return pattern.fullmatch(str(found)) is not None

    return matches


def _term(token: str) -> tuple[Predicate, str, str]:
    if '"' in token:
        raise _unsupported("phrases")
    field, colon, value = token.partition(":")
    if not colon:
        raise _unsupported(f"terms without a field ({token!r})")
    if not field:
        raise invalid_query(f"Invalid query term {token!r}")
    if not value:
        raise _unsupported(f"field grouping or empty values ({token!r})")
    if value[0] in "[{<>" or " TO " in value:
        raise _unsupported(f"range searches ({token!r})")
    matcher = _value_matcher(value)
    return (lambda fields: any(matcher(v) for v in fields(field))), field, value


class _Parser:
    """Recursive descent: or := and ("OR" and)*; and := unary (["AND"] unary)*."""

    def __init__(self, text: str) -> None:
        self.tokens = _TOKENS.findall(text)
        self.position = 0
        self.terms: list[tuple[str, str]] = []

    def peek(self) -> str | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self) -> str:
        token = self.peek()
        if token is None:
            raise invalid_query("The query ends unexpectedly")
        self.position += 1
        return token

    def disjunction(self) -> Predicate:
        parts = [self.conjunction()]
        while self.peek() == "OR":
            self.take()
            parts.append(self.conjunction())
        return parts[0] if len(parts) == 1 else (lambda f: any(p(f) for p in parts))

    def conjunction(self) -> Predicate:
        parts = [self.unary()]
        while self.peek() not in (None, ")", "OR"):
            if self.peek() == "AND":
                self.take()
            parts.append(self.unary())
        return parts[0] if len(parts) == 1 else (lambda f: all(p(f) for p in parts))

    def unary(self) -> Predicate:
        word = self.take()
        if word in ("AND", "OR", ")"):
            raise invalid_query(f"Unexpected {word!r} in the query")
        if word == "NOT":
            inner = self.unary()
            return lambda f: not inner(f)
        if word == "(":
            inner = self.disjunction()
            if self.peek() != ")":
                raise invalid_query("Unbalanced parentheses in the query")
            self.take()
            return inner
        if word.startswith("-") and len(word) > 1:
            self.tokens[self.position - 1 : self.position] = ["NOT", word[1:]]
            self.position -= 1
            return self.unary()
        predicate, field, value = _term(word)
        self.terms.append((field, value))
        return predicate


def parse_query(text: str) -> Query:
    """Parse a query string or raise InvalidQueryException saying what is wrong with it."""
    if not text or not text.strip():
        raise invalid_query("The query string is empty")
    bad = sorted(_SPECIAL.intersection(text))
    if bad:
        raise invalid_query(f"Unsupported special characters in the query: {' '.join(bad)}")
    parser = _Parser(text)
    predicate = parser.disjunction()
    if parser.peek() is not None:
        raise invalid_query(f"Unexpected {parser.peek()!r} in the query")
    if len(parser.terms) > MAX_TERMS:
        raise invalid_query(f"A query can have at most {MAX_TERMS} terms")
    leading = [v for _f, v in parser.terms if v.startswith(("*", "?")) and v != "*"]
    if len(leading) > 1:
        raise invalid_query("Only one term per query can start with a wildcard")
    everything = parser.terms == [("thingName", "*")] and len(parser.tokens) == 1
    return Query(text=text, matches=predicate, matches_everything=everything)
