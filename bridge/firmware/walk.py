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
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


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


def walk(
    root: str, stats: dict[str, int], skipped: list[tuple[str, str]] | None = None
) -> Iterator[Candidate]:
    """Every readable text file under `root`; `stats` counts scanned and skipped files,
    and `skipped` gets (path, why) for each skipped file a person may want to look at
    (symlinks, UTF-16 sources, files too large to read), binaries being only counted."""
    noted = skipped if skipped is not None else []
    real_root = os.path.realpath(root)
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
            if entry.is_symlink():
                # Never followed: a link may leave the repository or loop back into it.
                stats["skipped"] = stats.get("skipped", 0) + 1
                noted.append((relative, _symlink_reason(entry.path, real_root)))
                continue
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
            data, why = _read_text(entry)
            if data is None:
                stats["skipped"] = stats.get("skipped", 0) + 1
                if why:
                    noted.append((relative, why))
                continue
            stats["scanned"] = stats.get("scanned", 0) + 1
            yield Candidate(relative, data, vendored)


def _symlink_reason(path: str, real_root: str) -> str:
    target = os.path.realpath(path)
    if not os.path.exists(target):  # noqa: PTH110 - hot path, no Path objects
        return "broken symlink: not followed"
    if os.path.commonpath((real_root, target)) != real_root:
        return "symlink to a path outside the repository: not followed; scan its target"
    inside = os.path.relpath(target, real_root).replace(os.sep, "/")
    return f"symlink to {inside}: not followed, scanned there"


def _read_text(entry: os.DirEntry[str]) -> tuple[bytes | None, str]:
    """The file's bytes, or None and why it is skipped ("" for a binary: only counted)."""
    if os.path.splitext(entry.name)[1].lower() in _BINARY_SUFFIXES:  # noqa: PTH122 - hot path
        return None, ""
    try:
        # Reading one byte past the limit tells a huge file without a stat() per file.
        with open(entry.path, "rb") as handle:  # noqa: PTH123 - hot path, no Path objects
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        return None, f"unreadable: {exc.strerror or exc}"
    if len(data) > MAX_FILE_BYTES:
        return None, f"larger than {MAX_FILE_BYTES} bytes: not read"
    if b"\0" in data[:_SNIFF]:
        if data.startswith(_UTF16_BOMS):
            return None, "UTF-16 source: not scanned; convert it to UTF-8 to scan and patch it"
        return None, ""
    return data, ""
