"""The shape every Python recipe's rewrite takes: find clients, rewrite their calls."""

from __future__ import annotations

import libcst as cst
import libcst.matchers as m

from bridge.firmware.touch import RULES
from firmware_patches._python import code_of

__all__ = ["ClientTracker", "EndpointLiterals", "module_assignments"]

_ENDPOINT = next(rule.pattern for rule in RULES if rule.kind == "endpoint")


class EndpointLiterals(cst.CSTTransformer):
    """String literals that are an AWS endpoint and nothing else become the hub's host:
    the constant a program also hands to TLS (`ssl_params={"server_hostname": HOST}`)."""

    def __init__(self, hub: str) -> None:
        super().__init__()
        self.hub = hub
        self.changed = False

    def leave_SimpleString(
        self, original: cst.SimpleString, updated: cst.SimpleString
    ) -> cst.SimpleString:
        value = updated.evaluated_value
        if isinstance(value, str) and _ENDPOINT.fullmatch(value):
            self.changed = True
            return updated.with_changes(
                value=updated.prefix + updated.quote + self.hub + updated.quote
            )
        return updated


def module_assignments(module: cst.Module) -> dict[str, cst.BaseExpression]:
    """Top-level `NAME = value` assignments, to see what a name such as CLIENT_ID holds."""
    found: dict[str, cst.BaseExpression] = {}
    for statement in module.body:
        if isinstance(statement, cst.SimpleStatementLine):
            for small in statement.body:
                if isinstance(small, cst.Assign) and len(small.targets) == 1:
                    target = small.targets[0].target
                    if isinstance(target, cst.Name):
                        found[target.value] = small.value
    return found


class ClientTracker(cst.CSTVisitor):
    """Names (`client`, `self.mqtt`) bound to calls of one of `constructors`."""

    def __init__(self, constructors: set[str]) -> None:
        super().__init__()
        self.constructors = constructors
        self.clients: set[str] = set()

    def _bound(self, target: cst.BaseExpression, value: cst.BaseExpression | None) -> None:
        if isinstance(value, cst.Call) and code_of(value.func) in self.constructors:
            self.clients.add(code_of(target))

    def visit_Assign(self, node: cst.Assign) -> None:
        for target in node.targets:
            self._bound(target.target, node.value)

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        self._bound(node.target, node.value)


def is_method_call(node: cst.Call, clients: set[str], methods: set[str]) -> bool:
    """Whether `node` is `<client>.<method>(...)` for a tracked client."""
    return (
        m.matches(node.func, m.Attribute())
        and isinstance(node.func, cst.Attribute)
        and node.func.attr.value in methods
        and code_of(node.func.value) in clients
    )
