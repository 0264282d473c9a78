"""Every error the bridge raises on purpose, in one place."""

from __future__ import annotations

__all__ = [
    "BridgeError",
    "ConfigError",
    "ConnectionStringError",
    "Denied",
    "Gone",
    "HubConnectionError",
    "HubError",
    "HubThrottled",
    "InvalidTransition",
    "MalformedEvent",
    "NotFound",
    "PlanError",
    "PlanFileError",
    "PreconditionFailed",
    "Rejected",
    "RuleSqlError",
    "SourceError",
    "StoreError",
    "TargetError",
    "WaveError",
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


class Rejected(TargetError):  # noqa: N818 - reads as what happened
    """The target refused the change for good (too large, invalid): retrying will not help."""


class MalformedEvent(SourceError, ValueError):  # noqa: N818 - reads as what the message is
    """Raised when a message on a subscribed topic cannot be understood."""

    def __init__(self, topic: str, reason: str) -> None:
        super().__init__(f"{topic}: {reason}")
        self.topic = topic
        self.reason = reason


class Denied(SourceError):  # noqa: N818 - reads as what AWS said
    """The credentials may not call this API."""


class Gone(SourceError):  # noqa: N818 - reads as what AWS said
    """The resource disappeared (deleted while discovery ran)."""


class PlanError(BridgeError):
    """Raised when an inventory cannot be planned or the options contradict each other."""


class RuleSqlError(BridgeError):
    """Raised when a rule's SQL statement is malformed or uses syntax AWS IoT does not have."""

    def __init__(self, message: str, *, sql: str, position: int) -> None:
        line_start = sql.rfind("\n", 0, position) + 1
        line = sql.count("\n", 0, position) + 1
        column = position - line_start + 1
        super().__init__(f"{message} (line {line}, column {column})")
        self.reason = message
        self.sql = sql
        self.position = position


class ConnectionStringError(ConfigError, ValueError):
    """Raised when an IoT Hub service connection string is incomplete or malformed."""


class HubError(TargetError):
    """Raised when IoT Hub answers with an error status (`iothub-errorcode` in `code`)."""

    def __init__(
        self, status: int, code: str, message: str, *, device_id: str | None = None
    ) -> None:
        super().__init__(f"IoT Hub {status} {code}: {message}", device_id=device_id)
        self.status = status
        self.code = code
        self.message = message


class NotFound(HubError):  # noqa: N818 - named after the HTTP status it stands for
    """Raised on 404: the device, module, twin or job does not exist."""


class PreconditionFailed(HubError):  # noqa: N818 - named after the HTTP status it stands for
    """Raised on 412: the etag given in If-Match is no longer the current one."""


class HubThrottled(HubError):  # noqa: N818 - reads as what happened
    """Raised when IoT Hub still answers 429 after every retry (or a job slot never frees)."""


class HubConnectionError(TargetError):
    """Raised when IoT Hub cannot be reached, or its TLS certificate is not trusted."""


class PlanFileError(ConfigError):
    """Raised when a migration plan file cannot be read or is not a plan this bridge wrote."""


class WaveError(BridgeError):
    """Raised when a cutover wave is unknown, or cannot move as asked from its state."""

    def __init__(self, message: str, *, wave: str) -> None:
        super().__init__(message)
        self.wave = wave
