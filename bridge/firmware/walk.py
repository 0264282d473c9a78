"""Walk a repository fast: os.scandir, no binaries, no huge files, vendored code marked."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["MAX_FILE_BYTES", "Candidate", "is_vendored", "walk"]

MAX_FILE_BYTES = 2 * 1024 * 1024
# Directories that never hold device source worth reading.
_SKIP_DIRS = frozenset({".git", ".hg", ".svn", "__pycache__", ".venv", "venv", ".tox", "build"})
# Third-party code: reported, never edited.
_VENDORED_DIRS = frozenset(
    {"node_modules", "libraries", "vendor", "vendored", "third_party", "third-party", "external"}
)
_VENDORED_PREFIXES = ("aws-iot-device-sdk", "amazon-freertos", "esp-aws-iot", "coremqtt")
_BINARY_SUFFIXES = frozenset(
    {".bin", ".elf", ".hex", ".o", ".a", ".so", ".png", ".jpg", ".gif", ".zip", ".gz", ".pdf"}
)
_SNIFF = 8192


@dataclass(frozen=True, slots=True)
class Candidate:
    """A text file that may hold AWS IoT code."""

    path: str  # relative, with forward slashes
    data: bytes
    vendored: bool


def is_vendored(relative: str) -> bool:
    """Whether a relative path lies in a vendored SDK or dependency folder."""
    parts = relative.split("/")[:-1]
    return any(
        part in _VENDORED_DIRS or part.lower().startswith(_VENDORED_PREFIXES) for part in parts
    )


def walk(root: str, stats: dict[str, int]) -> Iterator[Candidate]:
    """Every readable text file under `root`; `stats` counts scanned and skipped files."""
    stack: list[tuple[str, str, bool]] = [(root, "", False)]
    while stack:
        directory, prefix, vendored = stack.pop()
        try:
            entries = list(os.scandir(directory))
        except OSError:
            continue
        for entry in entries:
            name = entry.name
            relative = prefix + name
            if entry.is_dir(follow_symlinks=False):
                if name in _SKIP_DIRS:
                    continue
                inner = (
                    vendored
                    or name in _VENDORED_DIRS
                    or name.lower().startswith(_VENDORED_PREFIXES)
                )
                stack.append((entry.path, relative + "/", inner))
                continue
            if not entry.is_file(follow_symlinks=False):
                continue
            data = _read_text(entry)
            if data is None:
                stats["skipped"] = stats.get("skipped", 0) + 1
                continue
            stats["scanned"] = stats.get("scanned", 0) + 1
            yield Candidate(relative, data, vendored)


def _read_text(entry: os.DirEntry[str]) -> bytes | None:
    if os.path.splitext(entry.name)[1].lower() in _BINARY_SUFFIXES:  # noqa: PTH122 - hot path
        return None
    try:
        # Reading one byte past the limit tells a huge file without a stat() per file.
        with open(entry.path, "rb") as handle:  # noqa: PTH123 - hot path, no Path objects
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError:
        return None
    if len(data) > MAX_FILE_BYTES or b"\0" in data[:_SNIFF]:
        return None
    return data
