"""The engine's view of the outside world: what a source and a target must offer.

The core imports no AWS or Azure code; `bridge.aws` and `bridge.azure` implement these.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol, runtime_checkable

from bridge.core.events import SourceEvent
from bridge.core.view import DeviceView

__all__ = [
    "Batch",
    "BulkProvisioner",
    "DeletePolicy",
    "Delivery",
    "Importer",
    "Source",
    "SourceReader",
    "Target",
]


@dataclass(frozen=True, slots=True)
class Delivery:
    """One message from the source, decoded or not, to be acknowledged once stored.

    `ack` tells the source the message is safe (persisted or dead-lettered); a message that
    is never acked is delivered again after a reconnect, so nothing accepted is lost.
    """

    topic: str
    payload: bytes
    event: SourceEvent | None  # None when the message could not be understood
    error: str | None  # why it could not be understood
    ack: Callable[[], None]
    received_at: float  # time.monotonic() when it arrived, for lag metrics
    properties: Mapping[str, str] = field(default_factory=dict)  # MQTT 5 user properties


class Source(Protocol):
    """A stream of source events with at-least-once delivery."""

    @property
    def connected(self) -> bool:
        """True while the subscription is live."""
        ...

    def deliveries(self) -> AsyncIterator[Delivery]:
        """Every message on the subscribed topics, in arrival order, until closed."""
        ...


class SourceReader(Protocol):
    """Reads the source's control plane, for re-reads and anti-entropy."""

    async def read_device(self, device_id: str) -> DeviceView | None:
        """The device's whole current state, or None when the thing does not exist."""
        ...

    async def read_groups(self) -> dict[str, str | None]:
        """Every thing group and its parent (None at the top)."""
        ...

    def snapshot(self) -> AsyncIterator[DeviceView]:
        """Every existing thing's current state, in any order."""
        ...


class DeletePolicy(StrEnum):
    """What happens on Azure when a thing is deleted on AWS."""

    DELETE = "delete"  # remove the device identity
    DISABLE = "disable"  # keep the identity, status disabled
    TAG = "tag"  # only mark the twin (tags.aws.deleted = true)


class Target(Protocol):
    """Makes the target reflect a device view. Every call is safe to repeat."""

    def fingerprint(self, view: DeviceView, group_paths: Mapping[str, str]) -> str:
        """A digest of what the target should hold for `view`; equal digests need no write."""
        ...

    def same(self, written: str, observed: str) -> bool:
        """True when a fingerprint from `observed` matches one this target wrote."""
        ...

    async def apply(
        self,
        view: DeviceView,
        group_paths: Mapping[str, str],
        *,
        create: bool,
        previous: str | None = None,
    ) -> str:
        """Write identity (when `create`) and what of the twin differs from `previous`
        (the fingerprint last written; None: write it all); return the new fingerprint."""
        ...

    async def remove(self, device_id: str, policy: DeletePolicy) -> None:
        """Carry out the delete policy for a device whose thing is gone."""
        ...

    def observed(self) -> AsyncIterator[tuple[str, str]]:
        """(device_id, fingerprint of what the target holds) for every mirrored device."""
        ...


# Optional capabilities a target may add to `Target`; the engine asks with isinstance.
Batch = Sequence[tuple[DeviceView, Mapping[str, str]]]  # views with their group paths


@runtime_checkable
class BulkProvisioner(Protocol):
    """A target that creates many new devices per call (IoT Hub's bulk registry API)."""

    async def provision(self, items: Batch) -> dict[str, str | Exception]:
        """Create `items`; per device its new fingerprint, or why it failed."""
        ...


@runtime_checkable
class Importer(Protocol):
    """A target that creates a large batch of devices in one job (IoT Hub's import jobs)."""

    async def import_devices(self, items: Batch) -> dict[str, str | Exception]:
        """Create `items` in one job; per device its new fingerprint, or why it failed."""
        ...
