"""Rewrite a device repository's AWS IoT code to IoT Hub: a unified diff, or applied."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path

from bridge.firmware.models import ScanReport, TouchPoint
from bridge.firmware.recipes import PatchOptions, PatchRefusedError
from bridge.firmware.scan import analyse

__all__ = ["PatchOutcome", "patch"]


@dataclass
class PatchOutcome:
    """The report after patching, the diff, and the new text of every changed file."""

    report: ScanReport
    diff: str
    changed: dict[str, str] = field(default_factory=dict)


def patch(root: Path, options: PatchOptions, *, apply: bool = False) -> PatchOutcome:
    """Patch every file a recipe owns; vendored files are never touched."""
    report, findings = analyse(root)
    changed: dict[str, str] = {}
    diffs: list[str] = []
    for finding in findings:
        recipe = finding.recipe
        if recipe is None or not any(p.verdict == "rewritten" for p in finding.report.touch_points):
            continue
        path = finding.report.file
        try:
            new = recipe.patch(path, finding.text, options)
        except PatchRefusedError as refused:
            finding.report.touch_points = [
                _human(point, f"not rewritten: {refused}") for point in finding.report.touch_points
            ]
            continue
        if new is None or new == finding.text:
            continue
        changed[path] = new
        diffs.append(
            "".join(
                difflib.unified_diff(
                    finding.text.splitlines(keepends=True),
                    new.splitlines(keepends=True),
                    fromfile=f"a/{path}",
                    tofile=f"b/{path}",
                )
            )
        )
    if apply:
        for path, new in changed.items():
            (root / path).write_text(new, encoding="utf-8")
    return PatchOutcome(report=report, diff="".join(diffs), changed=changed)


def _human(point: TouchPoint, reason: str) -> TouchPoint:
    if point.verdict == "needs_human":
        return point
    return point.model_copy(update={"verdict": "needs_human", "reason": reason})
