"""The errors the emulator answers with, carrying IoT Hub's error code and HTTP status."""

from __future__ import annotations

__all__ = ["IoTHubError"]


class IoTHubError(Exception):
    """An IoT Hub failure: `code` (e.g. `DeviceNotFound`) and the HTTP `status` it maps to."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    @classmethod
    def device_not_found(cls, device_id: str) -> IoTHubError:
        return cls(404, "DeviceNotFound", f"Device {device_id} not registered")

    @classmethod
    def module_not_found(cls, device_id: str, module_id: str) -> IoTHubError:
        return cls(404, "ModuleNotFound", f"Module {module_id} on device {device_id} not found")

    @classmethod
    def precondition_failed(cls, what: str) -> IoTHubError:
        return cls(412, "PreconditionFailed", f"Precondition failed: {what} etag mismatch")

    @classmethod
    def argument_invalid(cls, message: str) -> IoTHubError:
        return cls(400, "ArgumentInvalid", message)
