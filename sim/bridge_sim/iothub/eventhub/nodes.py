"""The request/response nodes: `$cbs` (put-token) and `$management` (READ)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bridge_sim.iothub.eventhub import codec
from bridge_sim.iothub.eventhub.auth import TokenError, verify_service_bus_token

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from bridge_sim.iothub.eventhub.connection import EndpointContext
    from bridge_sim.iothub.eventhub.log import EventLog

__all__ = ["CBS_NODE", "MANAGEMENT_NODE", "answer", "cbs_reply", "management_reply"]

CBS_NODE = "$cbs"
MANAGEMENT_NODE = "$management"
_EVENTHUB_TYPE = "com.microsoft:eventhub"
_PARTITION_TYPE = "com.microsoft:partition"


def _str(value: Any) -> str:
    return codec.text(value) or ""


def _app_properties(request: Any) -> dict[str, Any]:
    properties = request.application_properties or {}
    return {_str(key): value for key, value in properties.items()}


def _reply(request: Any, status: int, description: str, value: Any = None) -> Any:
    request_id = request.properties.message_id if request.properties else None
    return codec.Message(
        properties=codec.Properties(correlation_id=request_id),
        application_properties={
            "status-code": codec.typed("int", status),
            "status-description": codec.typed("string", description),
            # The SDK's management link reads this spelling; Event Hubs' $cbs the other.
            "statusDescription": codec.typed("string", description),
        },
        value=value,
    )


def cbs_reply(
    request: Any,
    *,
    hub_name: str,
    shared_access_keys: Mapping[str, str],
    entities: Iterable[str] = (),
) -> tuple[Any, bool]:
    """The reply to a put-token request, and whether the token was accepted."""
    properties = _app_properties(request)
    if _str(properties.get("operation")) != "put-token":
        return _reply(request, 400, "Unsupported $cbs operation."), False
    first_error: TokenError | None = None
    # A token names one entity: the hub's own or a custom Event Hub served beside it.
    for entity in (hub_name, *entities):
        try:
            verify_service_bus_token(_str(request.value), entity=entity, keys=shared_access_keys)
        except TokenError as error:
            first_error = first_error or error
            continue
        return _reply(request, 202, "Accepted"), True
    return _reply(request, 401, f"InvalidSignature: {first_error}"), False


def _eventhub_info(log: EventLog, hub_name: str) -> dict[str, Any]:
    ids = [str(number) for number in range(log.partition_count)]
    return {
        "name": codec.typed("string", hub_name),
        "type": codec.typed("string", _EVENTHUB_TYPE),
        "created_at": codec.typed("timestamp", log.created_at_ms),
        "partition_count": codec.typed("int", log.partition_count),
        "partition_ids": codec.typed("array_string", ids),
    }


def _partition_info(log: EventLog, hub_name: str, partition: int) -> dict[str, Any]:
    info = log.partition_info(partition)
    return {
        "name": codec.typed("string", hub_name),
        "type": codec.typed("string", _PARTITION_TYPE),
        "partition": codec.typed("string", str(partition)),
        "begin_sequence_number": codec.typed("long", info.begin_sequence_number),
        "last_enqueued_sequence_number": codec.typed("long", info.last_enqueued_sequence_number),
        "last_enqueued_offset": codec.typed("string", info.last_enqueued_offset),
        "last_enqueued_time_utc": codec.typed("timestamp", info.last_enqueued_time_ms),
        "is_partition_empty": codec.typed("boolean", info.is_empty),
    }


def management_reply(request: Any, *, log: EventLog, hub_name: str, authorized: bool) -> Any:
    """The reply to a `$management` READ of the hub or one of its partitions."""
    if not authorized:
        return _reply(request, 401, "Unauthorized: put a valid token on $cbs first.")
    properties = _app_properties(request)
    if _str(properties.get("operation")) != "READ":
        return _reply(request, 400, "Only READ is supported.")
    name = _str(properties.get("name"))
    if name.lower() != hub_name.lower():
        return _reply(request, 404, f"The messaging entity '{name}' could not be found.")
    entity_type = _str(properties.get("type"))
    if entity_type == _EVENTHUB_TYPE:
        return _reply(request, 200, "OK", _eventhub_info(log, hub_name))
    if entity_type == _PARTITION_TYPE:
        partition = _str(properties.get("partition"))
        if not partition.isdigit() or int(partition) >= log.partition_count:
            return _reply(request, 404, f"Partition '{partition}' could not be found.")
        return _reply(request, 200, "OK", _partition_info(log, hub_name, int(partition)))
    return _reply(request, 400, f"Unsupported type '{entity_type}'.")


def answer(
    node: str, request: Any, *, context: EndpointContext, authorized: bool
) -> tuple[Any, bool]:
    """The reply to a request on `node`, and whether it was a put-token that was accepted."""
    if node == CBS_NODE:
        return cbs_reply(
            request,
            hub_name=context.hub_name,
            shared_access_keys=context.shared_access_keys,
            entities=[log.hub_name for log in context.entities.values()],
        )
    # READ names the entity: the hub's own or a custom Event Hub.
    entity = context.entity(_str(_app_properties(request).get("name")))
    hub_name, log = entity or (context.hub_name, context.log)
    reply = management_reply(request, log=log, hub_name=hub_name, authorized=authorized)
    return reply, False
