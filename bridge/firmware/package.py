"""The patched program as an OTA artifact: a reproducible tar.gz, its size and SHA-256."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
from collections.abc import Mapping
from pathlib import Path

__all__ = ["build_package"]

_EXCLUDED_DIRS = frozenset({".git", "__pycache__", ".venv", "node_modules"})


def build_package(
    root: Path,
    changed: Mapping[str, str | bytes],
    destination: Path,
    *,
    url: str | None = None,
) -> dict[str, str | int]:
    """Archive `root` with `changed` files in place; return the job document's artifact.

    Bytes go in as they are (the patch's own encoding); text is written as UTF-8.
    """
    buffer = io.BytesIO()
    # Fixed mtimes, owners and order: the same tree gives the same SHA-256.
    with (
        gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as zipped,
        tarfile.open(fileobj=zipped, mode="w", format=tarfile.PAX_FORMAT) as archive,
    ):
        for relative in _files(root):
            if relative in changed:
                new = changed[relative]
                data = new if isinstance(new, bytes) else new.encode("utf-8")
            else:
                data = (root / relative).read_bytes()
            info = tarfile.TarInfo(relative)
            info.size = len(data)
            info.mode = 0o644
            archive.addfile(info, io.BytesIO(data))
    payload = buffer.getvalue()
    destination.parent.mkdir(parents=True, exist_ok=True)
    destination.write_bytes(payload)
    return {
        "url": url or destination.resolve().as_uri(),
        "size": len(payload),
        "sha256": hashlib.sha256(payload).hexdigest(),
    }


def _files(root: Path) -> list[str]:
    found: list[str] = []
    for directory, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in _EXCLUDED_DIRS and not d.startswith("."))
        base = Path(directory).relative_to(root)
        # Dotfiles (.env and the like) hold local settings and secrets, not the program.
        found.extend((base / name).as_posix() for name in files if not name.startswith("."))
    return sorted(found)
