"""Every error the bridge raises on purpose, in one place."""

from __future__ import annotations

__all__ = [
    "BridgeError",
    "ConfigError",
    "InvalidTransition",
    "SourceError",
    "StoreError",
    "TargetError",
]


class BridgeError(Exception):
    """Base of every error raised by the bridge on purpose."""


class ConfigError(BridgeError):
    """Raised when the settings are incomplete or contradict each other."""


class SourceError(BridgeError):
    """Raised when the AWS side fails or answers something unexpected."""

    def __init__(self, message: str, *, device_id: str | None = None) -> None:
        super().__init__(message)
        self.device_id = device_id


class TargetError(BridgeError):
    """Raised when the Azure side fails or answers something unexpected."""

    def __init__(self, message: str, *, device_id: str | None = None) -> None:
        super().__init__(message)
        self.device_id = device_id


class StoreError(BridgeError):
    """Raised when the state store cannot read or write."""


class InvalidTransition(BridgeError):  # noqa: N818 - the name says what happened
    """Raised when a device is asked to move to a state it cannot reach from its current one."""

    def __init__(self, device_id: str, current: str, event: str) -> None:
        super().__init__(f"device {device_id}: no transition from {current} on {event}")
        self.device_id = device_id
        self.current = current
        self.event = event
