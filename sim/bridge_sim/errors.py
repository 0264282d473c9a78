"""What the local stand-ins raise on purpose."""

from __future__ import annotations

from bridge.errors import BridgeError

__all__ = ["SimulatorError"]


class SimulatorError(BridgeError):
    """Raised when a local stand-in cannot start or is misused."""
