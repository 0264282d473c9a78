"""tree-sitter helpers for C recipes: parse, find defines, resolve string macros, edit by range.

The grammar is the `tree-sitter-c` wheel from PyPI, so nothing is downloaded at run time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

import tree_sitter_c
import tree_sitter_cpp
from tree_sitter import Language, Node, Parser, Tree

__all__ = [
    "ROOTS_NAME",
    "SAS_REFUSED",
    "Define",
    "Edit",
    "apply_edits",
    "c_concat",
    "defines",
    "error_count",
    "events_topic",
    "includes_end",
    "iothub_roots_c",
    "parse_c",
    "parse_cpp",
    "resolve_string",
    "roots_definition",
    "string_literal_edits",
    "topic_tokens",
]

_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~")
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


def _quote(text: str) -> str:
    return "".join(c if c in _SAFE else "".join(f"%{b:02X}" for b in c.encode()) for c in text)


def topic_tokens(value: str) -> list[tuple[str, str]] | None:
    """A topic spelled as "literal" MACRO "literal": [("lit", text), ("macro", NAME)]."""
    tokens: list[tuple[str, str]] = []
    for match in re.finditer(r'"((?:[^"\\]|\\.)*)"|([A-Za-z_]\w*)|(\S)', value):
        literal, macro, other = match.groups()
        if other is not None or (literal is not None and "\\" in literal):
            return None
        tokens.append(("lit", literal) if literal is not None else ("macro", macro))
    return tokens or None


def c_concat(pieces: list[tuple[str, str]]) -> str:
    """C source for literal and macro pieces, adjacent literals merged."""
    out: list[str] = []
    for kind, text in pieces:
        if kind == "lit" and out and out[-1].endswith('"'):
            out[-1] = out[-1][:-1] + text + '"'
        else:
            out.append(f'"{text}"' if kind == "lit" else text)
    return " ".join(out)


def events_topic(device: str, tokens: list[tuple[str, str]]) -> str:
    """C source of IoT Hub's events topic for an AWS topic made of literals and macros.

    The bag is bridge.mapping.topics.topic_properties(): awsTopic, then awsTopic1..N.
    Macros (thing names: letters, digits, ':', '_', '-') are spliced in unencoded.
    """
    levels: list[list[tuple[str, str]]] = [[]]
    for kind, text in tokens:
        if kind == "macro":
            levels[-1].append((kind, text))
            continue
        for index, part in enumerate(text.split("/")):
            if index:
                levels.append([])
            if part:
                levels[-1].append(("lit", part))

    def encoded(pieces: list[tuple[str, str]]) -> list[tuple[str, str]]:
        return [(k, _quote(t) if k == "lit" else t) for k, t in pieces]

    whole: list[tuple[str, str]] = []
    for index, level in enumerate(levels):
        if index:
            whole.append(("lit", "%2F"))
        whole.extend(encoded(level))
    pieces: list[tuple[str, str]] = [("lit", "devices/"), ("macro", device)]
    pieces += [("lit", "/messages/events/awsTopic="), *whole]
    for number, level in enumerate(levels, start=1):
        pieces += [("lit", f"&awsTopic{number}="), *encoded(level)]
    return c_concat(pieces)


ROOTS_NAME = "IOTHUB_ROOT_CAS"
# Why C and Arduino programs keep X.509 under --auth sas.
SAS_REFUSED = (
    "SAS on a microcontroller needs code the device lacks: HMAC-SHA256 token generation, "
    "a trusted clock (SNTP) and reconnecting before the token expires; keep X.509 (the "
    "default) or add them by hand"
)


def iothub_roots_c(indent: str = "    ") -> str:
    """IoT Hub's trust anchors (DigiCert Global Root G2, Microsoft RSA Root CA 2017) as the
    lines of a C string literal, from `_runtime/iothub_roots.pem`."""
    pem = resources.files("firmware_patches._runtime").joinpath("iothub_roots.pem").read_text()
    lines = [line for line in pem.splitlines() if line and not line.startswith("#")]
    return "\n".join(f'{indent}"{line}\\n"' for line in lines)


def includes_end(tree: Tree) -> int:
    """Where the file's top-level `#include`s end (0 without any); in a header whose
    whole text is an include guard, the includes inside the guard count, so what is
    inserted there stays guarded."""
    nodes = tree.root_node.named_children
    body = [node for node in nodes if node.type != "comment"]
    if len(body) == 1 and body[0].type == "preproc_ifdef":
        nodes = body[0].named_children
    position = 0
    for node in nodes:
        if node.type == "preproc_include":
            position = node.end_byte
    return position


def roots_definition(tree: Tree, *, progmem: bool = False) -> Edit | None:
    """An edit defining IOTHUB_ROOT_CAS after the file's last top-level #include, or None
    when a former patch already defined it."""
    source = tree.root_node.text or b""
    if f"{ROOTS_NAME}[]".encode() in source:
        return None
    position = includes_end(tree)
    qualifier = " PROGMEM" if progmem else ""
    text = (
        "\n/* iot-bridge: IoT Hub's trust anchors, DigiCert Global Root G2 and Microsoft RSA"
        " Root CA 2017 */\n"
        f"static const char {ROOTS_NAME}[]{qualifier} =\n{iothub_roots_c()};\n"
    )
    if position == 0:
        text = text.lstrip("\n") + "\n"
    return Edit(position, position, text.encode())
