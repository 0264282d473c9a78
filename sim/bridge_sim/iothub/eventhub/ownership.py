"""Owner level (epoch) rules: who may read a consumer group's partition.

As Event Hubs does: a receiver with an owner level disconnects every receiver of the same
consumer group and partition with a lower or no owner level (`amqp:link:stolen`); a receiver
with a lower owner level, or none, is refused while a higher one holds the partition.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from bridge_sim.iothub.eventhub.errors import LinkRefused

__all__ = ["LINK_STOLEN", "Claim", "OwnershipRegistry"]

LINK_STOLEN = b"amqp:link:stolen"


@dataclass(eq=False)
class Claim:
    """One attached receiver; `evict` detaches it with the given reason."""

    consumer_group: str
    partition: int
    owner_level: int | None
    evict: Callable[[str], None]
    entity: str = ""

    @property
    def key(self) -> tuple[str, str, int]:
        return self.entity.lower(), self.consumer_group.lower(), self.partition


class OwnershipRegistry:
    """The receivers attached to each consumer group's partitions, across connections."""

    def __init__(self) -> None:
        self._claims: dict[tuple[str, str, int], list[Claim]] = defaultdict(list)

    def claim(self, claim: Claim) -> None:
        """Admit `claim`, evicting the receivers it outranks; LinkRefused if it is outranked."""
        holders = self._claims[claim.key]
        levels = [held.owner_level for held in holders if held.owner_level is not None]
        highest = max(levels, default=None)
        if highest is not None and (claim.owner_level is None or claim.owner_level < highest):
            raise LinkRefused(
                f"Receiver with owner level {highest} already exists; a receiver with owner level "
                f"{claim.owner_level} cannot be created.",
                LINK_STOLEN,
            )
        if claim.owner_level is not None:
            for held in list(holders):
                holders.remove(held)
                held.evict(
                    f"New receiver with higher owner level {claim.owner_level} was created; "
                    f"this one (owner level {held.owner_level}) is disconnected."
                )
        holders.append(claim)

    def release(self, claim: Claim) -> None:
        """Forget a receiver that detached or whose connection went."""
        holders = self._claims.get(claim.key, [])
        if claim in holders:
            holders.remove(claim)
