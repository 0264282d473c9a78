"""Rewrite a device repository's AWS IoT code to IoT Hub: a unified diff, or applied."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path

from bridge.firmware.models import FileReport, ScanReport
from bridge.firmware.recipes import PatchOptions
from bridge.firmware.scan import analyse

__all__ = ["PatchOutcome", "patch"]


@dataclass
class PatchOutcome:
    """The report after patching, the diff, and the new text of every changed file."""

    report: ScanReport
    diff: str
    changed: dict[str, str] = field(default_factory=dict)
    # The same files as bytes in their own encoding: what --apply and --package write.
    data: dict[str, bytes] = field(default_factory=dict)


def patch(root: Path, options: PatchOptions, *, apply: bool = False) -> PatchOutcome:
    """Patch every file a recipe owns; vendored files are never touched."""
    report, findings = analyse(root, options)
    rewritten = [
        finding
        for finding in findings
        if finding.patched is not None and finding.patched != finding.text
    ]
    changed = {finding.report.file: finding.patched or "" for finding in rewritten}
    data = {finding.report.file: finding.patched_bytes() or b"" for finding in rewritten}
    diffs = [
        _diff(finding.report, finding.text, changed[finding.report.file])
        for finding in findings
        if finding.report.file in changed
    ]
    if apply:
        for path, new in data.items():
            # Bytes, not text: a Latin-1 file stays Latin-1 and CRLF stays CRLF.
            (root / path).write_bytes(new)
    return PatchOutcome(report=report, diff="".join(diffs), changed=changed, data=data)


def _diff(report: FileReport, old: str, new: str) -> str:
    # Context lines would echo a secret that sits near a change: files with secrets get
    # hunks without context (still applicable with `patch` or `git apply --unidiff-zero`).
    has_secret = any(point.kind == "secret" for point in report.touch_points)
    return "".join(
        difflib.unified_diff(
            old.splitlines(keepends=True),
            new.splitlines(keepends=True),
            fromfile=f"a/{report.file}",
            tofile=f"b/{report.file}",
            n=0 if has_secret else 3,
        )
    )
