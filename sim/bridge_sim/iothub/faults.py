"""Fault switches and request counters shared by the emulator's endpoints.

A `FaultInjector` holds rules; an endpoint asks `injector.check(endpoint, route)` once per
request and fails the request with the returned rule's status and error code. A rule fails
the next `count` matching requests, or a `fraction` of them, on one endpoint (`rest`,
`mqtt`, ...) or all, optionally only for routes starting with `route_prefix`. `latency`
delays matching requests. The device endpoint reuses the same injector with its own
endpoint name.
"""

from __future__ import annotations

import itertools
import random
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

__all__ = ["FaultInjector", "FaultRule", "RequestStats"]

_DEFAULT_CODES = {429: "ThrottlingException", 500: "ServerError", 503: "ServiceUnavailable"}


@dataclass
class FaultRule:
    """Fail matching requests with `status`/`code`: the next `count`, or a `fraction`."""

    status: int = 503
    code: str = ""
    count: int | None = None
    fraction: float = 1.0
    endpoint: str | None = None
    route_prefix: str | None = None
    id: int = 0
    hits: int = 0

    def __post_init__(self) -> None:
        if not self.code:
            self.code = _DEFAULT_CODES.get(self.status, "ServerError")
        if not 0.0 <= self.fraction <= 1.0:
            raise ValueError("fraction must be between 0 and 1")

    def matches(self, endpoint: str, route: str) -> bool:
        return (self.endpoint is None or self.endpoint == endpoint) and (
            self.route_prefix is None or route.startswith(self.route_prefix)
        )

    @property
    def exhausted(self) -> bool:
        return self.count is not None and self.hits >= self.count

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status,
            "code": self.code,
            "count": self.count,
            "fraction": self.fraction,
            "endpoint": self.endpoint,
            "routePrefix": self.route_prefix,
            "hits": self.hits,
        }


@dataclass
class FaultInjector:
    """The active fault rules and added latency, safe to share across threads."""

    latency: float = 0.0
    latency_endpoint: str | None = None
    rules: list[FaultRule] = field(default_factory=list)
    rng: random.Random = field(default_factory=random.Random)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, rule: FaultRule) -> FaultRule:
        with self._lock:
            rule.id = next(self._ids)
            self.rules.append(rule)
        return rule

    def clear(self) -> None:
        with self._lock:
            self.rules.clear()
            self.latency = 0.0
            self.latency_endpoint = None

    def delay_for(self, endpoint: str) -> float:
        """Seconds to wait before handling a request on `endpoint`."""
        if self.latency_endpoint not in {None, endpoint}:
            return 0.0
        return self.latency

    def check(self, endpoint: str, route: str) -> FaultRule | None:
        """The rule that fails this request, if any; counts the hit."""
        with self._lock:
            for rule in self.rules:
                if rule.exhausted or not rule.matches(endpoint, route):
                    continue
                if rule.fraction < 1.0 and self.rng.random() >= rule.fraction:
                    continue
                rule.hits += 1
                return rule
            # Spent rules go so the list stays short.
            self.rules = [rule for rule in self.rules if not rule.exhausted]
        return None


@dataclass
class RequestStats:
    """Counts of requests by (endpoint, method, route, status)."""

    counts: Counter[tuple[str, str, str, int]] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, endpoint: str, method: str, route: str, status: int) -> None:
        with self._lock:
            self.counts[(endpoint, method, route, status)] += 1

    def clear(self) -> None:
        with self._lock:
            self.counts.clear()

    def count(
        self,
        *,
        route: str | None = None,
        status: int | None = None,
        method: str | None = None,
        endpoint: str | None = None,
    ) -> int:
        """Total requests matching every filter given."""
        with self._lock:
            return sum(
                n
                for (e, m, r, s), n in self.counts.items()
                if (route is None or r == route)
                and (status is None or s == status)
                and (method is None or m == method)
                and (endpoint is None or e == endpoint)
            )

    def to_json(self) -> list[dict[str, Any]]:
        with self._lock:
            return [
                {"endpoint": e, "method": m, "route": r, "status": s, "count": n}
                for (e, m, r, s), n in sorted(self.counts.items())
            ]
