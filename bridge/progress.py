"""Progress for long commands: a live bar on a terminal, a log line every few seconds otherwise."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterator

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn

from bridge.logging import get_logger

__all__ = ["progress_reporter"]

Report = Callable[[str, int, int | None], None]
_LOG_EVERY_S = 5.0


@contextlib.contextmanager
def progress_reporter() -> Iterator[Report]:
    """Yield a `(phase, done, total)` callback suited to where stderr goes."""
    if not sys.stderr.isatty():
        log = get_logger("progress")
        last: dict[str, float] = {}

        def to_log(phase: str, done: int, total: int | None) -> None:
            now = time.monotonic()
            if (total is not None and done == total) or now - last.get(phase, 0) >= _LOG_EVERY_S:
                last[phase] = now
                log.info("progress.advanced", phase=phase, done=done, total=total)

        yield to_log
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, transient=False) as bar:
        tasks: dict[str, TaskID] = {}

        def to_bar(phase: str, done: int, total: int | None) -> None:
            if phase not in tasks:
                tasks[phase] = bar.add_task(phase, total=total)
            bar.update(tasks[phase], completed=done, total=total)

        yield to_bar
