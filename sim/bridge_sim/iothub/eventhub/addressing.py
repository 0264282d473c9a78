"""Receiver link addresses and the selector filter that says where reading starts."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bridge_sim.iothub.eventhub.errors import LinkRefused

if TYPE_CHECKING:
    from collections.abc import Collection

    from bridge_sim.iothub.eventhub.log import EventLog

__all__ = ["PartitionAddress", "parse_address", "starting_sequence"]

SELECTOR_FILTER = b"apache.org:selector-filter:string"
_SELECTOR = re.compile(
    r"^\s*amqp\.annotation\.x-opt-(?P<field>offset|sequence-number|enqueued-time)\s*"
    r"(?P<op>>=|>)\s*'(?P<value>[^']*)'\s*$",
    re.IGNORECASE,
)
_LATEST = "@latest"


@dataclass(frozen=True)
class PartitionAddress:
    """Where a receiver link reads from."""

    consumer_group: str
    partition: int


def parse_address(
    address: str, *, hub_name: str, consumer_groups: Collection[str], partition_count: int
) -> PartitionAddress:
    """Split `<hub>/ConsumerGroups/<cg>/Partitions/<n>`, refusing what Event Hubs would."""
    # Clients may send the address with or without a leading `amqps://host/`.
    path = re.sub(r"^amqps?://[^/]+/", "", address).strip("/")
    parts = path.split("/")
    if len(parts) != 5 or parts[1].lower() != "consumergroups" or parts[3].lower() != "partitions":
        raise LinkRefused(f"The messaging entity '{address}' could not be found.")
    hub, group, partition_text = parts[0], parts[2], parts[4]
    if hub.lower() != hub_name.lower():
        raise LinkRefused(f"The messaging entity '{hub}' could not be found.")
    known_groups = {name.lower(): name for name in consumer_groups}
    if group.lower() not in known_groups:
        raise LinkRefused(
            f"The messaging entity '{hub}/ConsumerGroups/{group}' could not be found."
        )
    if not partition_text.isdigit() or int(partition_text) >= partition_count:
        raise LinkRefused(
            f"The specified partition is invalid for an EventHub partition sender or receiver. "
            f"It should be between 0 and {partition_count - 1}.",
            condition=b"com.microsoft:argument-out-of-range",
        )
    return PartitionAddress(known_groups[group.lower()], int(partition_text))


def starting_sequence(selector: str | None, log: EventLog, partition: int) -> int:
    """The first sequence number a new receiver gets, from the client's selector filter."""
    if selector is None:
        # No filter: Event Hubs starts at the beginning of the retained stream.
        return log.begin_sequence_number(partition)
    match = _SELECTOR.match(selector)
    if match is None:
        raise LinkRefused(f"Unsupported selector {selector!r}", condition=b"amqp:invalid-field")
    field, inclusive, value = match["field"].lower(), match["op"] == ">=", match["value"]
    if value.lower() == _LATEST:
        return log.next_sequence_number(partition)
    try:
        number = int(value)
    except ValueError as error:
        raise LinkRefused(
            f"Invalid value in selector {selector!r}", b"amqp:invalid-field"
        ) from error
    begin = log.begin_sequence_number(partition)
    if field == "offset":
        if number < 0:
            return begin
        return log.first_sequence_after_offset(partition, number, inclusive=inclusive)
    if field == "sequence-number":
        return max(begin, number if inclusive else number + 1)
    return log.first_sequence_after_time(partition, number, inclusive=inclusive)
