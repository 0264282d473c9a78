"""Fuzz the IoT Hub emulator's query parser: a query (that runs) or QueryError, a 400."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from bridge_sim.iothub.query import QueryError, parse_query

_TWINS: list[dict[str, Any]] = [
    {"deviceId": "d1", "status": "enabled", "tags": {"site": "a", "n": 3, "k-1": [1]}},
    {"deviceId": "d2", "properties": {"desired": {"x": None, "y": "s"}}, "tags": None},
    {"deviceId": "d3", "moduleId": "m", "tags": {"site": 1.5}},
]


def test_one_input(data: bytes) -> None:
    try:
        query = parse_query(data.decode("utf-8", "replace"))
    except QueryError:
        return
    query.run(_TWINS)


SEEDS = (
    b"SELECT * FROM devices",
    b"SELECT * FROM devices WHERE tags.site = 'a' AND NOT (status != \"enabled\")",
    b"SELECT deviceId, tags.site AS site, COUNT() AS n FROM devices GROUP BY tags.site",
    b"SELECT * FROM devices.modules WHERE IS_DEFINED(tags['k-1']) OR tags.n IN [1, 2.5, null]",
    b"SELECT * FROM devices WHERE STARTSWITH(deviceId, 'd') AND tags.n NIN [true] AND x <= -1e3",
)

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from fuzz._harness import fuzz

    fuzz("sim_query", test_one_input, SEEDS)
