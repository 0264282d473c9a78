"""Files the tool writes, written so that an interrupted run never leaves half of one.

The data goes to a temporary file in the same directory (so the rename stays on one file
system), is flushed and fsynced, then `os.replace` puts it in place in one step, and the
directory is fsynced so the rename itself survives a power cut. A reader sees the old file
or the new one, never a mix; a failed write removes its temporary file.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

__all__ = ["open_atomically", "write_atomically"]


@contextlib.contextmanager
def open_atomically(path: Path, *, mode: int = 0o644, encoding: str = "utf-8") -> Iterator[IO[str]]:
    """A text file to write `path` through; it replaces `path` only if the block succeeds.

    The temporary file is created with `mode` before anything is written, so a secret is
    never readable by others, not even for a moment.
    """
    directory = path.parent
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    tmp = Path(name)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding=encoding, newline="") as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_directory(directory)


def write_atomically(path: Path, data: str, *, mode: int = 0o644) -> None:
    """Write `data` (text, UTF-8) to `path` atomically, with permissions `mode`."""
    with open_atomically(path, mode=mode) as out:
        out.write(data)


def _fsync_directory(directory: Path) -> None:
    # Not every platform or file system lets a directory be opened or fsynced (Windows,
    # some network mounts); the rename has happened either way.
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
