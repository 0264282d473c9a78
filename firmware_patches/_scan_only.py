"""Recipes that find and report a stack's touch points but do not rewrite it yet."""

from __future__ import annotations

import re
from dataclasses import dataclass

from bridge.firmware.models import TouchPoint
from bridge.firmware.recipes import PatchOptions
from bridge.firmware.touch import touch_points

__all__ = ["ScanOnlyRecipe"]


@dataclass(frozen=True)
class ScanOnlyRecipe:
    """Detects files by suffix and marker; every touch point needs a human, with `why`."""

    name: str
    stack: str
    suffixes: tuple[str, ...]
    marker: re.Pattern[str]
    why: str
    names: tuple[str, ...] = ()  # exact file names (Makefile, sdkconfig) besides suffixes

    def detect(self, path: str, text: str) -> bool:
        base = path.rsplit("/", 1)[-1]
        return (base in self.names or base.endswith(self.suffixes)) and bool(
            self.marker.search(text)
        )

    def scan(self, path: str, text: str) -> list[TouchPoint]:
        return [
            point.model_copy(update={"reason": f"{point.reason} ({self.why})"})
            for point in touch_points(path, text, self.stack, {})
        ]

    def patch(self, path: str, text: str, options: PatchOptions) -> str | None:
        return None
