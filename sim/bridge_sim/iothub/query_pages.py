"""Query results kept between pages, so paging through a large registry costs one query.

IoT Hub's continuation tokens are opaque; the emulator's name a snapshot of the result
rows and an offset into it. Snapshots expire, and only a bounded number is kept; a token
whose snapshot is gone re-runs the query from its offset, so paging never fails.
"""

from __future__ import annotations

import base64
import binascii
import secrets
import threading
import time
from collections import OrderedDict
from typing import Any

from bridge_sim.iothub.errors import IoTHubError

__all__ = ["QueryPages"]

_TTL_S = 300.0
_MAX_SNAPSHOTS = 64


class QueryPages:
    """Snapshots of query results, addressed by continuation tokens."""

    def __init__(self, ttl_s: float = _TTL_S, max_snapshots: int = _MAX_SNAPSHOTS) -> None:
        self._ttl_s = ttl_s
        self._max = max_snapshots
        self._snapshots: OrderedDict[str, tuple[float, list[dict[str, Any]]]] = OrderedDict()
        self._lock = threading.Lock()

    def keep(self, rows: list[dict[str, Any]]) -> str:
        """Keep `rows` and return the snapshot's id."""
        snapshot = secrets.token_hex(8)
        with self._lock:
            self._snapshots[snapshot] = (time.monotonic() + self._ttl_s, rows)
            while len(self._snapshots) > self._max:
                self._snapshots.popitem(last=False)
        return snapshot

    def rows(self, snapshot: str) -> list[dict[str, Any]] | None:
        """The rows of a live snapshot, or None when it expired or was evicted."""
        with self._lock:
            entry = self._snapshots.get(snapshot)
            if entry is None or entry[0] < time.monotonic():
                self._snapshots.pop(snapshot, None)
                return None
            return entry[1]

    @staticmethod
    def token(snapshot: str, offset: int) -> str:
        """The continuation token for `offset` into `snapshot`."""
        return base64.b64encode(f"{snapshot}:{offset}".encode()).decode()

    @staticmethod
    def parse(token: str | None) -> tuple[str | None, int]:
        """(snapshot, offset) from a continuation token; (None, 0) for the first page."""
        if not token:
            return None, 0
        try:
            snapshot, _, offset = base64.b64decode(token, validate=True).decode().rpartition(":")
            return snapshot or None, max(0, int(offset))
        except (binascii.Error, ValueError, UnicodeDecodeError) as error:
            raise IoTHubError(400, "BadRequest", "Invalid continuation token") from error
