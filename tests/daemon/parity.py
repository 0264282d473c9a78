"""An independent parity check: AWS through boto3, Azure through Microsoft's azure-iot-hub.

It shares no code with the bridge's mirror path on purpose (only the documented property-
name encoding), so a bug there cannot hide itself here. Returns every difference found.
"""

import json
import re

import boto3
from azure.iot.hub import IoTHubRegistryManager
from azure.iot.hub.models import QuerySpecification
from msrest.exceptions import HttpOperationError

RELAY_MODULE = "aws-bridge"
_FORBIDDEN = re.compile(r"[.$# %\x00-\x1f\x7f-\x9f]")


def encode(name):
    return _FORBIDDEN.sub(lambda m: f"%{ord(m.group()):02X}", name)


def encode_doc(doc):
    if isinstance(doc, dict):
        return {encode(str(k)): encode_doc(v) for k, v in doc.items()}
    if isinstance(doc, list):
        return [encode_doc(v) for v in doc]
    return doc


def aws_clients(env):
    common = {
        "region_name": env["AWS_REGION"],
        "endpoint_url": env["AWS_ENDPOINT_URL"],
        "aws_access_key_id": env["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": env["AWS_SECRET_ACCESS_KEY"],
    }
    return boto3.client("iot", **common), boto3.client("iot-data", **common)


def registry_manager(env):
    manager = IoTHubRegistryManager.from_connection_string(env["IOTHUB_CONNECTION_STRING"])
    manager.protocol.config.connection.verify = env["IOTHUB_ROOT_CA"]
    return manager


def _paths(iot):
    paths = {}
    for page in iot.get_paginator("list_thing_groups").paginate():
        for group in page["thingGroups"]:
            name = group["groupName"]
            meta = iot.describe_thing_group(thingGroupName=name)["thingGroupMetadata"]
            chain = [g["groupName"] for g in meta.get("rootToParentThingGroups", [])]
            paths[name] = "/".join([*chain, name])
    return paths


def _shadow(data, thing, name=None):
    kwargs = {"thingName": thing} | ({"shadowName": name} if name else {})
    try:
        body = json.loads(data.get_thing_shadow(**kwargs)["payload"].read())
    except data.exceptions.ResourceNotFoundException:
        return None
    return body.get("state", {})


def expected_twins(env, prefix=""):
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


def actual_twins(env, prefix=""):
    """device id -> (tags.aws, desired, relay module reported) as IoT Hub holds them."""
    manager = registry_manager(env)
    spec = QuerySpecification(query="SELECT * FROM devices")
    actual, token = {}, None
    try:
        while True:
            page = manager.query_iot_hub(spec, token, 100)
            for twin in page.items:
                if not twin.device_id.startswith(prefix):
                    continue
                desired = twin.properties.desired or {} if twin.properties else {}
                desired = {k: v for k, v in desired.items() if not k.startswith("$")}
                reported = _module_reported(manager, twin.device_id)
                actual[twin.device_id] = ((twin.tags or {}).get("aws"), desired, reported)
            token = page.continuation_token
            if not token:
                return actual
    finally:
        manager.protocol.close()


def _module_reported(manager, device_id):
    try:
        module = manager.get_module_twin(device_id, RELAY_MODULE)
    except HttpOperationError as exc:
        if exc.response is not None and exc.response.status_code == 404:
            return "relay module missing"
        raise
    reported = module.properties.reported or {} if module.properties else {}
    return {k: v for k, v in reported.items() if not k.startswith("$")}


def azure_call(env, method, *args):
    """One azure-iot-hub registry call with a manager closed afterwards."""
    manager = registry_manager(env)
    try:
        return getattr(manager, method)(*args)
    finally:
        manager.protocol.close()


def differences(env, prefix=""):
    """Every device whose Azure twin does not match AWS, with what differs."""
    expected = expected_twins(env, prefix)
    actual = actual_twins(env, prefix)
    found = {}
    for name in sorted(set(expected) | set(actual)):
        if name not in actual:
            found[name] = "missing on Azure"
        elif name not in expected:
            found[name] = "on Azure but not on AWS"
        elif expected[name] != actual[name]:
            found[name] = {"aws": expected[name], "azure": actual[name]}
    return found
