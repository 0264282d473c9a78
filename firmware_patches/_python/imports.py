"""Drop imports a rewrite left unused, so a patched program no longer needs the AWS SDK."""

from __future__ import annotations

import libcst as cst

from firmware_patches._python import code_of

__all__ = ["drop_unused_imports"]


class _Names(cst.CSTVisitor):
    def __init__(self) -> None:
        super().__init__()
        self.used: set[str] = set()

    def visit_Import(self, node: cst.Import) -> bool:
        return False

    def visit_ImportFrom(self, node: cst.ImportFrom) -> bool:
        return False

    def visit_Name(self, node: cst.Name) -> None:
        self.used.add(node.value)


class _Drop(cst.CSTTransformer):
    def __init__(self, modules: tuple[str, ...], used: set[str]) -> None:
        super().__init__()
        self.modules = modules
        self.used = used

    def _keep(self, alias: cst.ImportAlias) -> bool:
        local = code_of(alias.asname.name) if alias.asname else code_of(alias.name)
        return local.split(".")[0] in self.used

    def leave_ImportFrom(
        self, original: cst.ImportFrom, updated: cst.ImportFrom
    ) -> cst.ImportFrom | cst.RemovalSentinel:
        if updated.module is None or isinstance(updated.names, cst.ImportStar):
            return updated
        if not code_of(updated.module).startswith(self.modules):
            return updated
        kept = [alias for alias in updated.names if self._keep(alias)]
        if not kept:
            return cst.RemovalSentinel.REMOVE
        kept[-1] = kept[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
        return updated.with_changes(names=kept)

    def leave_Import(
        self, original: cst.Import, updated: cst.Import
    ) -> cst.Import | cst.RemovalSentinel:
        kept = [
            alias
            for alias in updated.names
            if not code_of(alias.name).startswith(self.modules) or self._keep(alias)
        ]
        if not kept:
            return cst.RemovalSentinel.REMOVE
        kept[-1] = kept[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
        return updated.with_changes(names=kept)


def drop_unused_imports(module: cst.Module, modules: tuple[str, ...]) -> cst.Module:
    """`module` without imports from `modules` whose names nothing uses any more."""
    names = _Names()
    module.visit(names)
    return module.visit(_Drop(modules, names.used))
