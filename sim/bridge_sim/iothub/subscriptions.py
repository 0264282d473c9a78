"""Delivery of desired-property and identity changes to whoever serves device connections."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from typing import Any

from bridge.logging import get_logger

__all__ = ["DesiredSubscription", "DesiredSubscriptions", "IdentityListener", "IdentityListeners"]

_log = get_logger("sim.iothub.subscriptions")
IdentityKey = tuple[str, str | None]
# listener(event, device_id, module_id) with event "created", "updated" or "deleted".
IdentityListener = Callable[[str, str, str | None], None]


class DesiredSubscription:
    """One identity's desired patches, to `callback` or else to `queue` (asyncio)."""

    def __init__(
        self,
        key: IdentityKey,
        callback: Callable[[dict[str, Any]], None] | None,
        on_close: Callable[[DesiredSubscription], None],
    ) -> None:
        self.key = key
        self._callback = callback
        self._on_close = on_close
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        # Writers may run on another thread; the queue is fed on the subscriber's loop.
        try:
            self._loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            self._loop = None

    def deliver(self, patch: dict[str, Any]) -> None:
        if self._callback is not None:
            self._callback(patch)
        elif self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self.queue.put_nowait, patch)
        else:
            self.queue.put_nowait(patch)

    def close(self) -> None:
        """Stop delivering; safe to call twice."""
        self._on_close(self)


class DesiredSubscriptions:
    """Every open subscription, by (device id, module id)."""

    def __init__(self) -> None:
        self._by_identity: dict[IdentityKey, list[DesiredSubscription]] = {}
        self._lock = threading.Lock()

    def subscribe(
        self, key: IdentityKey, callback: Callable[[dict[str, Any]], None] | None
    ) -> DesiredSubscription:
        subscription = DesiredSubscription(key, callback, self._remove)
        with self._lock:
            self._by_identity.setdefault(key, []).append(subscription)
        return subscription

    def _remove(self, subscription: DesiredSubscription) -> None:
        with self._lock:
            listeners = self._by_identity.get(subscription.key, [])
            with contextlib.suppress(ValueError):
                listeners.remove(subscription)
            if not listeners:
                self._by_identity.pop(subscription.key, None)

    def notify(self, key: IdentityKey, patch: dict[str, Any]) -> None:
        """Hand `patch` to every subscriber of `key`; one failing listener spoils nothing."""
        with self._lock:
            listeners = list(self._by_identity.get(key, []))
        for subscription in listeners:
            try:
                subscription.deliver(patch)
            except Exception:
                _log.exception(
                    "sim.iothub.desired_listener_failed", device_id=key[0], module_id=key[1]
                )


class IdentityListeners:
    """Callbacks told when an identity is created, updated (status, keys) or deleted."""

    def __init__(self) -> None:
        self._listeners: list[IdentityListener] = []
        self._lock = threading.Lock()

    def add(self, listener: IdentityListener) -> Callable[[], None]:
        """Register `listener`; call the returned function to remove it."""
        with self._lock:
            self._listeners.append(listener)

        def remove() -> None:
            with self._lock, contextlib.suppress(ValueError):
                self._listeners.remove(listener)

        return remove

    def notify(self, event: str, device_id: str, module_id: str | None) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(event, device_id, module_id)
            except Exception:
                _log.exception(
                    "sim.iothub.identity_listener_failed", identity_event=event, device_id=device_id
                )
