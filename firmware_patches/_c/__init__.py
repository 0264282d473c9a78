"""tree-sitter helpers for C recipes: parse, find defines, resolve string macros, edit by range.

The grammar is the `tree-sitter-c` wheel from PyPI, so nothing is downloaded at run time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import tree_sitter_c
import tree_sitter_cpp
from tree_sitter import Language, Node, Parser, Tree

__all__ = [
    "Define",
    "Edit",
    "apply_edits",
    "defines",
    "error_count",
    "parse_c",
    "parse_cpp",
    "resolve_string",
    "string_literal_edits",
]

C = Language(tree_sitter_c.language())
CPP = Language(tree_sitter_cpp.language())


def parse_c(source: bytes) -> Tree:
    return Parser(C).parse(source)


def parse_cpp(source: bytes) -> Tree:
    return Parser(CPP).parse(source)


def string_literal_edits(tree: Tree, pattern: re.Pattern[str], replacement: str) -> list[Edit]:
    """Replace every string literal whose whole content matches `pattern`."""
    edits = []
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        stack.extend(node.children)
        text = node.text.decode() if node.text is not None else ""
        if node.type == "preproc_arg":
            # A define's value is raw text to the grammar: `#define HOST "x"` counts too.
            stripped = text.strip()
            quoted = len(stripped) > 1 and stripped[0] == stripped[-1] == '"'
            if quoted and pattern.fullmatch(stripped[1:-1]):
                start = node.start_byte + len(text) - len(text.lstrip())
                edits.append(Edit(start, start + len(stripped), f'"{replacement}"'.encode()))
        elif node.type == "string_literal" and pattern.fullmatch(text[1:-1]):
            edits.append(Edit(node.start_byte, node.end_byte, f'"{replacement}"'.encode()))
    return edits


def error_count(tree: Tree) -> int:
    """ERROR and MISSING nodes: a patch must not add any."""
    count = 0
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        if node.type == "ERROR" or node.is_missing:
            count += 1
        stack.extend(node.children)
    return count


@dataclass(frozen=True)
class Define:
    name: str
    value: str  # the raw replacement text
    node: Node  # the preproc_def
    value_node: Node | None


def defines(tree: Tree) -> list[Define]:
    found: list[Define] = []
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        if node.type == "preproc_def":
            name = node.child_by_field_name("name")
            value = node.child_by_field_name("value")
            if name is not None and name.text is not None:
                text = value.text.decode() if value is not None and value.text else ""
                found.append(Define(name.text.decode(), text.strip(), node, value))
        stack.extend(reversed(node.children))
    return found


def resolve_string(  # noqa: PLR0911 - each kind of part that cannot resolve says so
    value: str, known: dict[str, str], depth: int = 0
) -> str | None:
    """The string a macro value spells (literals and macros concatenated), else None."""
    if depth > 8:
        return None
    tree = parse_c(f"const char *v = {value};".encode())
    if error_count(tree):
        return None
    declarator = tree.root_node.children[0].child_by_field_name("declarator")
    init = declarator.child_by_field_name("value") if declarator is not None else None
    if init is None:
        return None
    parts = init.children if init.type == "concatenated_string" else [init]
    out = ""
    for part in parts:
        text = part.text.decode() if part.text else ""
        if part.type == "string_literal":
            inner = text[1:-1]
            if "\\" in inner:
                return None
            out += inner
        elif part.type == "identifier" and text in known:
            resolved = resolve_string(known[text], known, depth + 1)
            if resolved is None:
                return None
            out += resolved
        else:
            return None
    return out


@dataclass(frozen=True)
class Edit:
    start: int
    end: int
    text: bytes


def apply_edits(source: bytes, edits: list[Edit]) -> bytes:
    for edit in sorted(edits, key=lambda e: e.start, reverse=True):
        source = source[: edit.start] + edit.text + source[edit.end :]
    return source
