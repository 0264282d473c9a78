"""Tokenizer for AWS IoT SQL: every token remembers where it starts, for precise errors."""

from __future__ import annotations

from dataclasses import dataclass

from bridge.errors import RuleSqlError

__all__ = ["KEYWORDS", "Token", "tokenize"]

KEYWORDS = frozenset(
    {
        "SELECT",
        "FROM",
        "WHERE",
        "AND",
        "OR",
        "NOT",
        "AS",
        "IN",
        "CASE",
        "WHEN",
        "THEN",
        "ELSE",
        "END",
        "TRUE",
        "FALSE",
        "NULL",
    }
)

# Longest first, so `<=` is not read as `<` then `=`.
_OPERATORS = ("<>", "!=", "<=", ">=", "=", "<", ">", "+", "-", "*", "/", "%")
_PUNCTUATION = "(),.[]"
# Operators people bring from other languages; named so the error says what to write instead.
_FOREIGN_OPERATORS = {"==": "=", "&&": "AND", "||": "OR", "!": "NOT"}


@dataclass(frozen=True, slots=True)
class Token:
    """One lexical token: kind is IDENT, KEYWORD, STRING, NUMBER, OP, PUNCT or EOF."""

    kind: str
    text: str
    position: int


def tokenize(sql: str) -> list[Token]:
    """Split a statement into tokens, ending with an EOF token."""
    tokens: list[Token] = []
    index = 0
    while index < len(sql):
        char = sql[index]
        if char.isspace():
            index += 1
        elif char in "'\"`":
            index = _read_quoted(sql, index, tokens)
        elif _digit(char) or (char == "." and _digit(sql[index + 1 : index + 2])):
            index = _read_number(sql, index, tokens)
        elif char.isalpha() or char in "_$":
            end = index
            while end < len(sql) and (sql[end].isalnum() or sql[end] in "_$"):
                end += 1
            word = sql[index:end]
            kind = "KEYWORD" if word.upper() in KEYWORDS else "IDENT"
            tokens.append(Token(kind, word.upper() if kind == "KEYWORD" else word, index))
            index = end
        else:
            index = _read_symbol(sql, index, tokens)
    tokens.append(Token("EOF", "", len(sql)))
    return tokens


def _digit(char: str) -> bool:
    # Not str.isdigit: it is true for "²" and Arabic-Indic digits, which int() refuses.
    return char != "" and char in "0123456789"


def _read_quoted(sql: str, start: int, tokens: list[Token]) -> int:
    quote = sql[start]
    chars: list[str] = []
    index = start + 1
    while index < len(sql):
        char = sql[index]
        if char == quote:
            # A doubled quote inside a literal stands for one quote character.
            if sql[index + 1 : index + 2] == quote:
                chars.append(quote)
                index += 2
                continue
            kind = "IDENT" if quote == "`" else "STRING"
            tokens.append(Token(kind, "".join(chars), start))
            return index + 1
        if char == "\\" and index + 1 < len(sql):
            chars.append(sql[index + 1])
            index += 2
            continue
        chars.append(char)
        index += 1
    raise RuleSqlError(f"unterminated string starting with {quote}", sql=sql, position=start)


def _read_number(sql: str, start: int, tokens: list[Token]) -> int:
    index = start
    while index < len(sql) and (_digit(sql[index]) or sql[index] == "."):
        index += 1
    if index < len(sql) and sql[index] in "eE":
        exponent = index + 1
        if exponent < len(sql) and sql[exponent] in "+-":
            exponent += 1
        if exponent < len(sql) and _digit(sql[exponent]):
            index = exponent
            while index < len(sql) and _digit(sql[index]):
                index += 1
    text = sql[start:index]
    if text.count(".") > 1:
        raise RuleSqlError(f"malformed number {text!r}", sql=sql, position=start)
    if index < len(sql) and (sql[index].isalpha() or sql[index] == "_"):
        raise RuleSqlError(f"malformed number {sql[start : index + 1]!r}", sql=sql, position=start)
    tokens.append(Token("NUMBER", text, start))
    return index


def _read_symbol(sql: str, start: int, tokens: list[Token]) -> int:
    for foreign, native in _FOREIGN_OPERATORS.items():
        if sql.startswith(foreign, start) and not sql.startswith("!=", start):
            message = f"{foreign!r} is not an AWS IoT SQL operator; use {native!r}"
            raise RuleSqlError(message, sql=sql, position=start)
    for operator in _OPERATORS:
        if sql.startswith(operator, start):
            tokens.append(Token("OP", operator, start))
            return start + len(operator)
    if sql[start] in _PUNCTUATION:
        tokens.append(Token("PUNCT", sql[start], start))
        return start + 1
    raise RuleSqlError(f"unexpected character {sql[start]!r}", sql=sql, position=start)
