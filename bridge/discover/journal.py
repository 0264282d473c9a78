"""An append-only journal of what discovery has read, so an interrupted run can resume.

Each line is one JSON record `{"kind": ..., "key": ..., "value": ...}`. A crash can
leave the last line half-written: it is ignored on reading. A value recorded as a pydantic
model stays a model in memory (no second copy as a dict) and is written with pydantic's
own serialiser; read back from a file, it is a dict again.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import IO, Any, TypeVar

from pydantic import BaseModel

__all__ = ["Journal", "as_model"]

M = TypeVar("M", bound=BaseModel)


def as_model(model: type[M], value: Any) -> M:
    """A journaled value as `model`: as recorded in this run, or validated from the file."""
    return value if isinstance(value, model) else model.model_validate(value)


class Journal:
    """Records finished units of work and tells which ones are already done."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.done: dict[str, dict[str, Any]] = defaultdict(dict)
        self._file: IO[str] | None = None

    def load(self) -> int:
        """Read an existing journal; return how many records it held."""
        if not self.path.exists():
            return 0
        count = 0
        with self.path.open() as lines:
            for line in lines:
                try:
                    record = json.loads(line)
                except ValueError:
                    continue  # a torn last line from a crash
                self.done[record["kind"]][record["key"]] = record["value"]
                count += 1
        return count

    def open(self, *, fresh: bool) -> None:
        """Open for appending; `fresh` discards what an earlier run recorded."""
        if fresh:
            self.done.clear()
        self._file = self.path.open("w" if fresh else "a")

    def record(self, kind: str, key: str, value: Any) -> None:
        """Remember one finished unit (flushed, so a kill loses at most the unit in flight)."""
        self.done[kind][key] = value
        if self._file is not None:
            if isinstance(value, BaseModel):
                head = json.dumps({"kind": kind, "key": key})[:-1]
                self._file.write(f'{head}, "value": {value.model_dump_json()}}}')
            else:
                self._file.write(
                    json.dumps({"kind": kind, "key": key, "value": value}, default=str)
                )
            self._file.write("\n")
            self._file.flush()

    def close(self) -> None:
        """Close the file."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def remove(self) -> None:
        """Delete the journal after a complete run."""
        self.close()
        self.path.unlink(missing_ok=True)
