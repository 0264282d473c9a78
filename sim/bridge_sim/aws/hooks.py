"""Hooks around moto's backend methods: moto has no change events, so we wrap its calls.

Every wrapped call runs under one re-entrant lock, because moto's server threads and the
stand-in's own asyncio code (shadow service, jobs engine) mutate the same backend objects.
`before` callbacks may raise a moto exception to reject a call the way AWS would;
`after` callbacks see the call's bound arguments and its result.
"""

from __future__ import annotations

import functools
import inspect
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import threading

__all__ = ["BackendHooks", "Call"]


@dataclass
class Call:
    """One call of a backend method, with its arguments bound by name."""

    method: str
    arguments: dict[str, Any]
    result: Any = None
    # Scratch space for a before-hook to hand something to its after-hook.
    context: dict[str, Any] = field(default_factory=dict)


Callback = Callable[[Call], None]


class BackendHooks:
    """Wraps methods of one moto backend instance with before/after callbacks."""

    def __init__(self, backend: Any, lock: threading.RLock) -> None:
        self.backend = backend
        self.lock = lock
        self._before: dict[str, list[Callback]] = defaultdict(list)
        self._after: dict[str, list[Callback]] = defaultdict(list)
        self._originals: dict[str, Callable[..., Any]] = {}

    def before(self, method: str, callback: Callback) -> None:
        """Run `callback` before `method`; it may raise to reject the call."""
        self._wrap(method)
        self._before[method].append(callback)

    def after(self, method: str, callback: Callback) -> None:
        """Run `callback` after `method` returned."""
        self._wrap(method)
        self._after[method].append(callback)

    def original(self, method: str) -> Callable[..., Any]:
        """The unwrapped method, for glue that must bypass its own hooks."""
        found: Callable[..., Any] = self._originals.get(method) or getattr(self.backend, method)
        return found

    def unwrap_all(self) -> None:
        """Restore every wrapped method."""
        for name in self._originals:
            # The wrapper lives in the instance dict; removing it exposes the class method.
            self.backend.__dict__.pop(name, None)
        self._originals.clear()
        self._before.clear()
        self._after.clear()

    def _wrap(self, method: str) -> None:
        if method in self._originals:
            return
        original = getattr(self.backend, method)
        signature = inspect.signature(original)
        self._originals[method] = original

        @functools.wraps(original)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            call = Call(method, dict(bound.arguments))
            with self.lock:
                for callback in self._before[method]:
                    callback(call)
                call.result = original(*args, **kwargs)
                for callback in self._after[method]:
                    callback(call)
            return call.result

        setattr(self.backend, method, wrapper)
