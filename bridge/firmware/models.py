"""What a firmware scan finds and what a patch did, as JSON-ready pydantic models."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["FileReport", "ScanReport", "SkippedFile", "TouchPoint", "Verdict"]

Verdict = Literal["rewritten", "needs_human"]


class TouchPoint(BaseModel):
    """One place where device code touches AWS IoT, and what the patch does about it."""

    model_config = ConfigDict(frozen=True)

    file: str
    line: int
    kind: str
    stack: str
    verdict: Verdict
    reason: str


class FileReport(BaseModel):
    """A file with AWS IoT usage: its stack, whether it is vendored, and its touch points."""

    file: str
    stack: str
    vendored: bool = False
    touch_points: list[TouchPoint] = Field(default_factory=list)


class SkippedFile(BaseModel):
    """A file the scan did not read, and why (binaries are only counted)."""

    model_config = ConfigDict(frozen=True)

    file: str
    reason: str


class ScanReport(BaseModel):
    """Everything a scan found in one repository."""

    root: str
    files_scanned: int = 0
    files_skipped: int = 0
    stacks: list[str] = Field(default_factory=list)
    files: list[FileReport] = Field(default_factory=list)
    skipped: list[SkippedFile] = Field(default_factory=list)

    @property
    def touch_points(self) -> list[TouchPoint]:
        return [point for report in self.files for point in report.touch_points]

    def counts(self) -> dict[str, int]:
        """Touch points per verdict."""
        counts = {"rewritten": 0, "needs_human": 0}
        for point in self.touch_points:
            counts[point.verdict] += 1
        return counts
