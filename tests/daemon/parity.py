"""An independent parity check: AWS through boto3 (bridge_sim.parity), Azure through
Microsoft's azure-iot-hub. Returns every difference found."""

from azure.iot.hub import IoTHubRegistryManager
from azure.iot.hub.models import QuerySpecification
from msrest.exceptions import HttpOperationError

from bridge_sim.parity import RELAY_MODULE, aws_clients, encode, encode_doc, expected_twins

__all__ = ["aws_clients", "encode", "encode_doc", "expected_twins"]


def registry_manager(env):
    manager = IoTHubRegistryManager.from_connection_string(env["IOTHUB_CONNECTION_STRING"])
    manager.protocol.config.connection.verify = env["IOTHUB_ROOT_CA"]
    return manager


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
