"""Errors raised inside a connection: a broken protocol, or a link that cannot attach."""

from __future__ import annotations

__all__ = ["LinkRefused", "ProtocolError"]


class ProtocolError(Exception):
    """Raised when the peer breaks the protocol; the connection closes with `condition`."""

    def __init__(self, condition: bytes, description: str) -> None:
        super().__init__(description)
        self.condition = condition
        self.description = description


class LinkRefused(ValueError):  # noqa: N818 - the name says what happened
    """Raised when a link cannot be attached; carries the AMQP error condition to detach with."""

    def __init__(self, message: str, condition: bytes = b"amqp:not-found") -> None:
        super().__init__(message)
        self.condition = condition
