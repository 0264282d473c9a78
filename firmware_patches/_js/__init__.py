"""tree-sitter helpers for JavaScript and TypeScript recipes (grammar wheels from PyPI)."""

from __future__ import annotations

import json

import tree_sitter_javascript
import tree_sitter_typescript
from tree_sitter import Language, Node, Parser, Tree

from bridge.firmware.recipes import PatchOptions

__all__ = ["error_count", "nodes", "parse_script", "sas_key_expression", "text_of"]

JS = Language(tree_sitter_javascript.language())
TS = Language(tree_sitter_typescript.language_typescript())
TSX = Language(tree_sitter_typescript.language_tsx())


def parse_script(path: str, source: bytes) -> Tree:
    """JavaScript, TypeScript or TSX, by the file's suffix."""
    if path.endswith((".ts", ".mts", ".cts")):
        return Parser(TS).parse(source)
    if path.endswith(".tsx"):
        return Parser(TSX).parse(source)
    return Parser(JS).parse(source)


def error_count(tree: Tree) -> int:
    """ERROR and MISSING nodes: a patch must not add any."""
    count, stack = 0, [tree.root_node]
    while stack:
        node = stack.pop()
        count += node.type == "ERROR" or node.is_missing
        stack.extend(node.children)
    return count


def text_of(node: Node | None) -> str:
    return node.text.decode() if node is not None and node.text else ""


def nodes(root: Node, kind: str) -> list[Node]:
    """Every node of `kind` under `root`, in source order."""
    found, stack = [], [root]
    while stack:
        node = stack.pop()
        if node.type == kind:
            found.append(node)
        stack.extend(reversed(node.children))
    return found


def sas_key_expression(options: PatchOptions, fs: str) -> str:
    """JavaScript reading the SAS device key (`--sas-key-from`); `null` under X.509."""
    if options.auth != "sas":
        return "null"
    source = options.sas_key
    if source.mode == "env":
        return f"process.env.{source.value}"
    return f"{fs}.readFileSync({json.dumps(source.value)}, 'utf8').trim()"
