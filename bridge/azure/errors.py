"""What the IoT Hub service client raises: one class per outcome a caller acts on."""

from __future__ import annotations

from bridge.errors import TargetError

__all__ = [
    "HubConnectionError",
    "HubError",
    "HubThrottled",
    "NotFound",
    "PreconditionFailed",
]


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
