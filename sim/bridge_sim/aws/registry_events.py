"""Registry events on `$aws/events/...`, in AWS's payload shapes, whoever makes the call.

moto has no events, so after-hooks on its backend build them. AWS publishes these only
for the event types enabled with UpdateEventConfigurations: the stand-in's publish path
goes through `event_config.EventConfigurations.gate`, which drops the others.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bridge_sim.aws.hooks import Call
    from bridge_sim.aws.moto_server import MotoServer

__all__ = ["RegistryEvents"]

Publish = Callable[[str, bytes], None]


def _now_ms() -> int:
    return int(time.time() * 1000)


class RegistryEvents:
    """Publishes thing, thing type, group, membership and hierarchy events."""

    def __init__(self, *, moto: MotoServer, publish: Publish) -> None:
        self._moto = moto
        self._publish = publish

    def install(self) -> None:
        """Register the hooks on the IoT backend."""
        hooks = self._moto.iot_hooks
        hooks.after("create_thing", self._thing_created)
        hooks.before("update_thing", self._remember_thing_type)
        hooks.after("update_thing", self._thing_updated)
        hooks.before("delete_thing", self._remember_thing)
        hooks.after("delete_thing", self._thing_deleted)
        hooks.after("create_thing_type", self._type_created)
        hooks.after("deprecate_thing_type", self._type_updated)
        hooks.before("delete_thing_type", self._remember_type)
        hooks.after("delete_thing_type", self._type_deleted)
        hooks.before("create_thing_group", self._remember_group_exists)
        hooks.after("create_thing_group", self._group_created)
        hooks.after("update_thing_group", self._group_updated)
        hooks.before("delete_thing_group", self._remember_group)
        hooks.after("delete_thing_group", self._group_deleted)
        hooks.before("add_thing_to_thing_group", self._remember_membership)
        hooks.after("add_thing_to_thing_group", self._membership_added)
        hooks.before("remove_thing_from_thing_group", self._remember_membership)
        hooks.after("remove_thing_from_thing_group", self._membership_removed)

    # -- helpers ---------------------------------------------------------------------------

    def _emit(self, topic: str, event_type: str, operation: str, **fields: Any) -> None:
        body = {
            "eventType": event_type,
            "eventId": uuid.uuid4().hex,
            "timestamp": _now_ms(),
            "operation": operation,
            "accountId": self._moto.account_id,
            **fields,
        }
        self._publish(topic, json.dumps(body, separators=(",", ":"), default=str).encode())

    def _thing(self, name: str) -> Any:
        return self._moto.iot.describe_thing(name)

    def _group(self, name: str) -> Any:
        for group in self._moto.iot.thing_groups.values():
            if group.thing_group_name == name:
                return group
        return None

    def _thing_event(self, thing: Any, operation: str) -> None:
        self._emit(
            f"$aws/events/thing/{thing.thing_name}/{operation.lower()}",
            "THING_EVENT",
            operation,
            thingId=thing.thing_id,
            thingName=thing.thing_name,
            versionNumber=thing.version,
            thingTypeName=thing.thing_type.thing_type_name if thing.thing_type else None,
            attributes=dict(thing.attributes),
        )

    def _association(self, thing: Any, type_name: str, operation: str) -> None:
        # The developer guide's topic ($aws/events/thingTypeAssociation/thing/{thing}/{type})
        # carries operation CREATED or DELETED (ADDED/REMOVED go with the newer
        # .../thingType/{type}/added|removed topics, which this stand-in does not publish).
        self._emit(
            f"$aws/events/thingTypeAssociation/thing/{thing.thing_name}/{type_name}",
            "THING_TYPE_ASSOCIATION_EVENT",
            operation,
            thingId=thing.thing_id,
            thingName=thing.thing_name,
            thingTypeName=type_name,
        )

    # -- things ----------------------------------------------------------------------------

    def _thing_created(self, call: Call) -> None:
        thing = call.result
        self._thing_event(thing, "CREATED")
        if thing.thing_type is not None:
            self._association(thing, thing.thing_type.thing_type_name, "CREATED")

    def _remember_thing_type(self, call: Call) -> None:
        thing = self._thing(call.arguments["thing_name"])
        call.context["type"] = thing.thing_type.thing_type_name if thing.thing_type else None

    def _thing_updated(self, call: Call) -> None:
        thing = self._thing(call.arguments["thing_name"])
        self._thing_event(thing, "UPDATED")
        before = call.context["type"]
        after = thing.thing_type.thing_type_name if thing.thing_type else None
        if before != after:
            if before is not None:
                self._association(thing, before, "DELETED")
            if after is not None:
                self._association(thing, after, "CREATED")

    def _remember_thing(self, call: Call) -> None:
        call.context["thing"] = self._thing(call.arguments["thing_name"])

    def _thing_deleted(self, call: Call) -> None:
        self._thing_event(call.context["thing"], "DELETED")

    # -- thing types -----------------------------------------------------------------------

    def _type_event(self, thing_type: Any, operation: str) -> None:
        props = thing_type.thing_type_properties or {}
        metadata = thing_type.metadata
        deprecated = bool(metadata.get("deprecated"))
        self._emit(
            f"$aws/events/thingType/{thing_type.thing_type_name}/{operation.lower()}",
            "THING_TYPE_EVENT",
            operation,
            thingTypeId=thing_type.thing_type_id,
            thingTypeName=thing_type.thing_type_name,
            isDeprecated=deprecated,
            deprecationDate=_now_ms() if deprecated else None,
            searchableAttributes=props.get("searchableAttributes", []),
            propagatingAttributes=props.get("mqtt5Configuration", {}).get(
                "propagatingAttributes", []
            ),
            description=props.get("thingTypeDescription"),
        )

    def _type_created(self, call: Call) -> None:
        self._type_event(
            self._moto.iot.describe_thing_type(call.arguments["thing_type_name"]), "CREATED"
        )

    def _type_updated(self, call: Call) -> None:
        self._type_event(call.result, "UPDATED")

    def _remember_type(self, call: Call) -> None:
        call.context["type"] = self._moto.iot.describe_thing_type(call.arguments["thing_type_name"])

    def _type_deleted(self, call: Call) -> None:
        self._type_event(call.context["type"], "DELETED")

    # -- thing groups ----------------------------------------------------------------------

    def _group_event(self, group: Any, operation: str) -> None:
        props = group.thing_group_properties or {}
        lineage = group.metadata.get("rootToParentThingGroups", [])
        parent = self._group(group.parent_group_name) if group.parent_group_name else None
        self._emit(
            f"$aws/events/thingGroup/{group.thing_group_name}/{operation.lower()}",
            "THING_GROUP_EVENT",
            operation,
            thingGroupId=group.thing_group_id,
            thingGroupName=group.thing_group_name,
            versionNumber=group.version,
            parentGroupName=group.parent_group_name or None,
            parentGroupId=parent.thing_group_id if parent else None,
            description=props.get("thingGroupDescription"),
            rootToParentThingGroups=[
                {
                    "groupArn": item["groupArn"],
                    "groupId": getattr(self._group(item["groupName"]), "thing_group_id", None),
                }
                for item in lineage
            ],
            attributes=props.get("attributePayload", {}).get("attributes", {}),
            dynamicGroupMappingId=None,
        )

    def _hierarchy(self, parent_name: str, child: Any, operation: str) -> None:
        parent = self._group(parent_name)
        self._emit(
            f"$aws/events/thingGroupHierarchy/thingGroup/{parent_name}"
            f"/childThingGroup/{child.thing_group_name}/{operation.lower()}",
            "THING_GROUP_HIERARCHY_EVENT",
            operation,
            thingGroupId=parent.thing_group_id if parent else None,
            thingGroupName=parent_name,
            childGroupId=child.thing_group_id,
            childGroupName=child.thing_group_name,
        )

    def _remember_group_exists(self, call: Call) -> None:
        call.context["existed"] = self._group(call.arguments["thing_group_name"]) is not None

    def _group_created(self, call: Call) -> None:
        if call.context["existed"]:
            return  # AWS answers an identical re-create with the existing group, silently
        group = self._group(call.arguments["thing_group_name"])
        self._group_event(group, "CREATED")
        if group.parent_group_name:
            self._hierarchy(group.parent_group_name, group, "ADDED")

    def _group_updated(self, call: Call) -> None:
        self._group_event(self._group(call.arguments["thing_group_name"]), "UPDATED")

    def _remember_group(self, call: Call) -> None:
        call.context["group"] = self._group(call.arguments["thing_group_name"])

    def _group_deleted(self, call: Call) -> None:
        group = call.context["group"]
        if group is None:
            return  # AWS succeeds silently for a group that does not exist
        if group.parent_group_name:
            self._hierarchy(group.parent_group_name, group, "REMOVED")
        self._group_event(group, "DELETED")

    # -- membership ------------------------------------------------------------------------

    def _remember_membership(self, call: Call) -> None:
        backend = self._moto.iot
        group = backend._identify_thing_group(
            call.arguments["thing_group_name"], call.arguments["thing_group_arn"]
        )
        thing = backend._identify_thing(call.arguments["thing_name"], call.arguments["thing_arn"])
        call.context.update(group=group, thing=thing, member=thing.arn in group.things)

    def _membership(self, call: Call, operation: str) -> None:
        group, thing = call.context["group"], call.context["thing"]
        self._emit(
            f"$aws/events/thingGroupMembership/thingGroup/{group.thing_group_name}"
            f"/thing/{thing.thing_name}/{operation.lower()}",
            "THING_GROUP_MEMBERSHIP_EVENT",
            operation,
            groupArn=group.arn,
            groupId=group.thing_group_id,
            thingArn=thing.arn,
            thingId=thing.thing_id,
            membershipId=uuid.uuid5(uuid.NAMESPACE_URL, group.arn + thing.arn).hex,
        )

    def _membership_added(self, call: Call) -> None:
        if not call.context["member"]:
            self._membership(call, "ADDED")

    def _membership_removed(self, call: Call) -> None:
        if call.context["member"]:
            self._membership(call, "REMOVED")
