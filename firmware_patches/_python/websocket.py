"""Programs with an optional SigV4 websocket branch beside their X.509 path.

AWS's own samples (awsiotsdk's `samples/pubsub.py`, AWSIoTPythonSDK's
`basicPubSub.py`) build an X.509 connection unless a `--use-web-socket`/`-w` flag asks
for SigV4. IoT Hub has no SigV4, but the X.509 path moves as it is: the recipes rewrite
it and turn the websocket branch's client construction into a `raise` that says why,
and the scan reports only that branch as needing a human.
"""

from __future__ import annotations

import ast
from collections.abc import Callable

import libcst as cst

from bridge.firmware.models import TouchPoint

__all__ = [
    "WEBSOCKET_BRANCH",
    "branch_lines",
    "drop_unreachable",
    "mark_branch",
    "raise_statement",
]

WEBSOCKET_BRANCH = (
    "SigV4 websocket branch: IoT Hub has no SigV4 signing; the patch makes this branch "
    "raise and keeps the X.509 path. Use X.509 or SAS, over MQTT or MQTT over WebSockets "
    "on 443, and delete the branch"
)
_MESSAGE = (
    "iot-bridge: IoT Hub has no SigV4 websockets; use the X.509 certificate path, "
    "or SAS, over MQTT or MQTT over WebSockets on 443"
)

Predicate = Callable[[ast.Call], bool]


def branch_lines(text: str, websocket: Predicate, x509: Predicate) -> list[range] | None:
    """The line ranges of the `if`/`else` blocks that build a websocket client, when each
    such block's other side builds an X.509 client; None otherwise (the file is then
    refused as a whole)."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return None
    blocks: list[range] = []
    # (node, the innermost if/else block holding it, that block's other side)
    pending: list[tuple[ast.AST, list[ast.stmt] | None, list[ast.stmt]]] = [(tree, None, [])]
    while pending:
        node, block, other = pending.pop()
        if isinstance(node, ast.Call) and websocket(node):
            if block is None or not _builds(other, x509):
                return None
            first, last = block[0], block[-1]
            blocks.append(range(first.lineno, (last.end_lineno or last.lineno) + 1))
        if isinstance(node, ast.If):
            pending.append((node.test, block, other))
            pending.extend((child, node.body, node.orelse) for child in node.body)
            pending.extend((child, node.orelse, node.body) for child in node.orelse)
            continue
        pending.extend((child, block, other) for child in ast.iter_child_nodes(node))
    return blocks or None


def _builds(statements: list[ast.stmt], x509: Predicate) -> bool:
    return any(
        isinstance(node, ast.Call) and x509(node)
        for statement in statements
        for node in ast.walk(statement)
    )


def mark_branch(points: list[TouchPoint], blocks: list[range]) -> list[TouchPoint]:
    """The points inside a websocket branch, and the flags choosing it, need a human."""
    update = {"verdict": "needs_human", "reason": WEBSOCKET_BRANCH}
    return [
        point.model_copy(update=update)
        if point.kind == "sigv4_websocket" or any(point.line in b for b in blocks)
        else point
        for point in points
    ]


def raise_statement(original: cst.SimpleStatementLine) -> cst.SimpleStatementLine:
    """`raise RuntimeError(...)` in place of the statement building a websocket client."""
    error = cst.Call(cst.Name("RuntimeError"), [cst.Arg(cst.SimpleString(repr(_MESSAGE)))])
    return original.with_changes(body=[cst.Raise(exc=error)])


def drop_unreachable(block: cst.IndentedBlock) -> cst.IndentedBlock:
    """The branch up to the `raise` put in it: what followed could never run, and left
    there it kept AWS settings (port 443, a CA-only `configureCredentials`) that the
    rewrite of the X.509 side then half-rewrote."""
    for index, statement in enumerate(block.body):
        if _is_raise(statement) and index + 1 < len(block.body):
            return block.with_changes(body=block.body[: index + 1])
    return block


def _is_raise(statement: cst.BaseStatement) -> bool:
    if not isinstance(statement, cst.SimpleStatementLine) or len(statement.body) != 1:
        return False
    raised = statement.body[0]
    return (
        isinstance(raised, cst.Raise)
        and isinstance(raised.exc, cst.Call)
        and bool(raised.exc.args)
        and isinstance(raised.exc.args[0].value, cst.SimpleString)
        and raised.exc.args[0].value.value == repr(_MESSAGE)
    )
