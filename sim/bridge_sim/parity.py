"""What IoT Hub should hold for each thing, read from AWS alone (boto3).

An independent parity check: it shares no code with the bridge's mirror path on purpose
(only the documented property-name encoding), so a bug there cannot hide itself here. The
rehearsal's verification and the tests compare it with what IoT Hub holds.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import boto3

__all__ = ["RELAY_MODULE", "aws_clients", "encode", "encode_doc", "expected_twins"]

RELAY_MODULE = "aws-bridge"
_FORBIDDEN = re.compile(r"[.$# %\x00-\x1f\x7f-\x9f]")


def encode(name: str) -> str:
    return _FORBIDDEN.sub(lambda m: f"%{ord(m.group()):02X}", name)


def encode_doc(doc: Any) -> Any:
    if isinstance(doc, dict):
        return {encode(str(k)): encode_doc(v) for k, v in doc.items()}
    if isinstance(doc, list):
        return [encode_doc(v) for v in doc]
    return doc


def aws_clients(env: Mapping[str, str]) -> tuple[Any, Any]:
    common: dict[str, Any] = {
        "region_name": env["AWS_REGION"],
        "endpoint_url": env["AWS_ENDPOINT_URL"],
        "aws_access_key_id": env["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": env["AWS_SECRET_ACCESS_KEY"],
    }
    return boto3.client("iot", **common), boto3.client("iot-data", **common)


def _paths(iot: Any) -> dict[str, str]:
    paths = {}
    for page in iot.get_paginator("list_thing_groups").paginate():
        for group in page["thingGroups"]:
            name = group["groupName"]
            meta = iot.describe_thing_group(thingGroupName=name)["thingGroupMetadata"]
            chain = [g["groupName"] for g in meta.get("rootToParentThingGroups", [])]
            paths[name] = "/".join([*chain, name])
    return paths


def _shadow(data: Any, thing: str, name: str | None = None) -> dict[str, Any] | None:
    kwargs = {"thingName": thing} | ({"shadowName": name} if name else {})
    try:
        body = json.loads(data.get_thing_shadow(**kwargs)["payload"].read())
    except data.exceptions.ResourceNotFoundException:
        return None
    state: dict[str, Any] = body.get("state", {})
    return state


def expected_twins(env: Mapping[str, str], prefix: str = "") -> dict[str, tuple[Any, Any, Any]]:
    """thing name -> (tags.aws, desired, relay module reported) as AWS says they should be."""
    iot, data = aws_clients(env)
    paths = _paths(iot)
    expected = {}
    for page in iot.get_paginator("list_things").paginate():
        for thing in page["things"]:
            name = thing["thingName"]
            if not name.startswith(prefix):
                continue
            groups = [
                g["groupName"]
                for p in iot.get_paginator("list_thing_groups_for_thing").paginate(thingName=name)
                for g in p["thingGroups"]
            ]
            aws = {"thingName": name}
            if thing.get("thingTypeName"):
                aws["thingType"] = thing["thingTypeName"]
            if thing.get("attributes"):
                aws["attributes"] = dict(thing["attributes"])
            if groups:
                aws["groups"] = sorted(paths[g] for g in groups)
            desired = dict((_shadow(data, name) or {}).get("desired") or {})
            named = {}
            shadow_names = data.list_named_shadows_for_thing(thingName=name)["results"]
            for shadow_name in shadow_names:
                state = _shadow(data, name, shadow_name) or {}
                if state.get("desired"):
                    named[encode(shadow_name)] = encode_doc(state["desired"])
            desired = encode_doc(desired)
            if named:
                desired["shadows"] = named
            reported = encode_doc(dict((_shadow(data, name) or {}).get("reported") or {}))
            named_reported = {}
            for shadow_name in shadow_names:
                state = _shadow(data, name, shadow_name) or {}
                if state.get("reported"):
                    named_reported[encode(shadow_name)] = encode_doc(state["reported"])
            if named_reported:
                reported["shadows"] = named_reported
            expected[name] = (encode_doc(aws), desired, reported)
    return expected
