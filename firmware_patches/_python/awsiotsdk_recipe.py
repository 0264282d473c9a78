"""awsiotsdk v2 (awscrt MQTT 3 connection, iotshadow) rewritten to azure-iot-device.

The connection builder becomes `IoTHubDeviceClient.create_from_x509_certificate` with the
device's own certificate and key; the connection's calls and the shadow client's calls
become calls of the injected adapter, which keeps their return shapes (futures, packet
ids) and callback shapes, so the program's own code around them is unchanged.
"""

from __future__ import annotations

import ast
import re

import libcst as cst

from bridge.firmware.models import TouchPoint
from bridge.firmware.recipes import PatchOptions, PatchRefusedError
from bridge.firmware.touch import touch_points
from firmware_patches._python import (
    RANDOM_ID,
    block_source,
    code_of,
    device_id_expression,
    imported_names,
    inject_block,
    parse,
    with_auth,
)
from firmware_patches._python.imports import drop_unused_imports
from firmware_patches._python.transform import ClientTracker, is_method_call, module_assignments
from firmware_patches._python.websocket import (
    branch_lines,
    drop_unreachable,
    mark_branch,
    raise_statement,
)

__all__ = ["AwsIotSdkRecipe"]

_AWS_MODULES = ("awsiot", "awscrt")
_SHADOW_ALIAS = re.compile(r"\biot(?:shadow|jobs) as (\w+)")
_BUILDERS = ("mtls_from_path",)
_REFUSED_BUILDERS = {
    "mtls_from_bytes": "certificate held in memory: write it to files or use SAS",
    "websockets_with_default_aws_signing": "SigV4 websocket: IoT Hub needs X.509 or SAS",
    "websockets_with_custom_handshake": "custom websocket handshake: needs a human",
    "direct_with_custom_authorizer": "AWS custom authorizer: needs a human",
    "mtls_with_pkcs11": "PKCS#11 key: wire it into azure-iot-device by hand",
}
_WEBSOCKET = "websockets_with_default_aws_signing"
# MQTT 5 (awsiot.mqtt5_client_builder, awscrt.mqtt5, the V2 service clients on
# mqtt_request_response): the adapter answers the MQTT 3 connection's calls only, and
# IoT Hub speaks MQTT 3.1.1.
_MQTT5 = re.compile(
    r"\bmqtt5_client_builder\b|^\s*from\s+awscrt\s+import\s[^\n]*\bmqtt5\b|"
    r"\bawscrt\.mqtt5\b|\bIot\w+ClientV2\b|\bmqtt_request_response\b",
    re.MULTILINE,
)
# The awscrt connection built by hand (the SDK's 2019 samples, programs on awscrt alone):
# only mqtt_connection_builder's connection is rewritten, so the hand-built one would keep
# talking to AWS while the shadow and jobs clients around it became IoT Hub's.
_RAW_CONNECTION = re.compile(r"\b(?:mqtt|awscrt\.mqtt)\.(?:Connection|Client)\s*\(")
RAW_CONNECTION_REFUSED = (
    "awscrt MQTT connection built by hand (mqtt.Client/mqtt.Connection): only "
    "mqtt_connection_builder.mtls_from_path connections are rewritten; build it with that "
    "builder or port the connection to azure-iot-device by hand"
)
# Fleet provisioning (awsiot.iotidentity) and Greengrass discovery need AWS's own MQTT
# connection: rewriting the connection alone hands them an IoT Hub client they cannot use.
_AWS_ONLY_CLIENTS = re.compile(r"\biotidentity\b|\bgreengrass_discovery\b|\bDiscoveryClient\b")
AWS_ONLY_REFUSED = (
    "{} needs AWS IoT's own MQTT connection (fleet provisioning or Greengrass discovery): "
    "replace it with the Device Provisioning Service (DPS) or IoT Edge by hand; the "
    "connection is not rewritten alone, which would hand it an IoT Hub client"
)
# The connection crosses a module boundary: returned by a helper (the SDK's 2022 samples'
# utils/command_line_utils.py build_direct_mqtt_connection), or used in a file that does
# not build it (their pubsub.py: cmdUtils.build_mqtt_connection(...)). Its calls in the
# other file would keep awscrt's API while the object became an IoTHubDeviceClient.
RETURNED_REFUSED = (
    "the connection built here is returned to other code ({}), whose connect, publish and "
    "subscribe calls are not rewritten with it: build and use the connection in one module, "
    "or port by hand"
)
ELSEWHERE_REFUSED = (
    "the MQTT connection used here is built in another module ({}): its connect, publish "
    "and subscribe calls cannot be rewritten without it; build the connection with "
    "mqtt_connection_builder.mtls_from_path in this module, or port by hand"
)
_CONNECTION_USE = re.compile(r"\b([\w.]+)\.(?:connect|publish|subscribe)\s*\(")
MQTT5_REFUSED = (
    "MQTT 5 client ({}): IoT Hub speaks MQTT 3.1.1, and user properties, topic aliases, "
    "session expiry and the V2 request/response service clients have no IoT Hub "
    "equivalent: port the program to azure-iot-device by hand"
)
_CONNECTION_CALLS = {
    "connect": "iothub_connect",
    "disconnect": "iothub_disconnect",
    "publish": "iothub_publish",
    "subscribe": "iothub_subscribe",
    "unsubscribe": "iothub_unsubscribe",
}
_QOS = {"AT_MOST_ONCE": "0", "AT_LEAST_ONCE": "1", "EXACTLY_ONCE": "1"}
_REWRITTEN = {
    "endpoint": "connection built for the IoT Hub host (IOTHUB_HOST)",
    "config_key": "connection built for the IoT Hub host (IOTHUB_HOST)",
    "client_id": "client id is the IoT Hub device id",
    "certificate": "same certificate and key: X.509 thumbprint authentication",
    "root_ca": "trust comes from azure-iot-device's default store (IoT Hub's roots)",
    "keep_alive": "keep-alive capped at 1177 s",
    "topic": "publish becomes send_message(Message(...)) with awsTopic properties",
    "shadow": "shadow update/get/delta become twin reported patch, get_twin, desired patches",
    "named_shadow": "named shadow mapped to twin properties under shadows.<name>",
    "jobs": "jobs become a direct method named after the job; status in reported jobs.<id>",
}


def _kw(name: str, value: cst.BaseExpression) -> cst.Arg:
    return cst.Arg(value, keyword=cst.Name(name))


class AwsIotSdkRecipe:
    """The python_awsiotsdk recipe."""

    name = "python_awsiotsdk"
    stack = "python_awsiotsdk"

    def detect(self, path: str, text: str) -> bool:
        return path.endswith(".py") and (
            "from awsiot" in text
            or "import awsiot" in text
            or "from awscrt" in text
            or "import awscrt" in text
            or "IoT Hub device client adapter" in text
        )

    def scan(self, path: str, text: str) -> list[TouchPoint]:
        points = touch_points(path, text, self.stack, _REWRITTEN)
        blocks = _websocket_branches(text)
        return points if blocks is None else mark_branch(points, blocks)

    def patch(self, path: str, text: str, options: PatchOptions) -> str | None:
        mqtt5 = _MQTT5.search(text)
        if mqtt5 is not None:
            raise PatchRefusedError(MQTT5_REFUSED.format(mqtt5.group().strip()))
        aws_only = _AWS_ONLY_CLIENTS.search(text)
        if aws_only is not None:
            raise PatchRefusedError(AWS_ONLY_REFUSED.format(aws_only.group()))
        if _RAW_CONNECTION.search(text) and re.search(r"\bawscrt\b", text):
            raise PatchRefusedError(RAW_CONNECTION_REFUSED)
        module = parse(path, text)
        builders = set()
        for name in (*_BUILDERS, *_REFUSED_BUILDERS):
            builders |= imported_names(module, ("awsiot.mqtt_connection_builder", "awsiot"), name)
        tracker = ClientTracker(builders)
        module.visit(tracker)
        _refuse_crossing(text, tracker.clients, builders)
        shadow_modules = {"iotshadow", "iotjobs", *_SHADOW_ALIAS.findall(text)}
        rewriter = _Rewriter(options, tracker.clients, builders, module, shadow_modules)
        rewriter.websocket_branch = _websocket_branches(text) is not None
        new = module.visit(rewriter)
        if not rewriter.changed:
            return None
        new = drop_unused_imports(new, _AWS_MODULES)
        block = with_auth(block_source("awsiotsdk_adapter", options.hub), options)
        return inject_block(new, block, path)


class _Rewriter(cst.CSTTransformer):
    def __init__(
        self,
        options: PatchOptions,
        clients: set[str],
        builders: set[str],
        module: cst.Module,
        shadow_modules: set[str],
    ) -> None:
        super().__init__()
        self.options = options
        self.clients = clients
        self.builders = builders
        self.assignments = module_assignments(module)
        self.shadow_modules = shadow_modules or {"iotshadow"}
        self.shadow_clients: set[str] = set()
        self.changed = False
        # The SigV4 builder sits in an if/else whose other side builds an X.509 one.
        self.websocket_branch = False

    def leave_SimpleStatementLine(
        self, original: cst.SimpleStatementLine, updated: cst.SimpleStatementLine
    ) -> cst.SimpleStatementLine:
        if self.websocket_branch and _WEBSOCKET in code_of(original):
            self.changed = True
            return raise_statement(updated)
        return updated

    def leave_IndentedBlock(
        self, original: cst.IndentedBlock, updated: cst.IndentedBlock
    ) -> cst.IndentedBlock:
        return drop_unreachable(updated)

    def visit_Assign(self, node: cst.Assign) -> None:
        value = node.value
        if isinstance(value, cst.Call) and code_of(value.func).endswith("IotShadowClient"):
            for target in node.targets:
                self.shadow_clients.add(code_of(target.target))

    def leave_Attribute(
        self, original: cst.Attribute, updated: cst.Attribute
    ) -> cst.BaseExpression:
        # iotjobs.JobStatus.SUCCEEDED -> "SUCCEEDED": AWS's job statuses are strings.
        if code_of(updated.value).endswith("JobStatus") and updated.attr.value.isupper():
            self.changed = True
            return cst.SimpleString(f'"{updated.attr.value}"')
        # mqtt.QoS.AT_LEAST_ONCE -> 1: IoT Hub takes QoS 0 or 1 and azure-iot-device picks.
        if code_of(updated.value).endswith("QoS") and updated.attr.value in _QOS:
            self.changed = True
            return cst.Integer(_QOS[updated.attr.value])
        return updated

    def leave_Call(self, original: cst.Call, updated: cst.Call) -> cst.BaseExpression:
        func = code_of(updated.func)
        if func in self.builders:
            return self._builder(updated, func)
        if is_method_call(updated, self.clients, set(_CONNECTION_CALLS)):
            assert isinstance(updated.func, cst.Attribute)
            helper = _CONNECTION_CALLS[updated.func.attr.value]
            self.changed = True
            separator = cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))
            if (
                updated.args
                and isinstance(updated.args[0].comma, cst.Comma)
                and len(updated.args) > 1
            ):
                separator = updated.args[0].comma
            connection = cst.Arg(
                updated.func.value, comma=separator if updated.args else cst.MaybeSentinel.DEFAULT
            )
            return updated.with_changes(func=cst.Name(helper), args=[connection, *updated.args])
        head, _, attr = func.rpartition(".")
        if head in self.shadow_modules and attr:
            self.changed = True
            if attr == "IotShadowClient":
                return updated.with_changes(func=cst.Name("iothub_shadow_client"))
            if attr == "IotJobsClient":
                return updated.with_changes(func=cst.Name("iothub_jobs_client"))
            if any(arg.keyword is None for arg in updated.args):
                raise PatchRefusedError(f"positional arguments to {func}: needs a human")
            return updated.with_changes(func=cst.Name("iothub_model"))
        return updated

    def _builder(self, call: cst.Call, func: str) -> cst.BaseExpression:
        name = func.rsplit(".", 1)[-1]
        if name == _WEBSOCKET and self.websocket_branch:
            return call  # its statement becomes a raise
        if name in _REFUSED_BUILDERS:
            raise PatchRefusedError(_REFUSED_BUILDERS[name])
        args = {a.keyword.value: a.value for a in call.args if a.keyword is not None}
        if len(args) != len(call.args):
            raise PatchRefusedError(f"positional arguments to {func}")
        for needed in ("cert_filepath", "pri_key_filepath"):
            if needed not in args:
                raise PatchRefusedError(f"{func} without {needed}")
        client_id = args.get("client_id")
        checked = client_id
        if isinstance(client_id, cst.Name) and client_id.value in self.assignments:
            checked = self.assignments[client_id.value]
        if checked is not None and RANDOM_ID.search(code_of(checked)):
            device = device_id_expression(self.options.device_id, checked)
        else:
            device = device_id_expression(self.options.device_id, client_id)
        if self.options.auth == "sas":
            factory = "IoTHubDeviceClient.create_from_symmetric_key"
            credential = _kw("symmetric_key", cst.parse_expression("iothub_device_key()"))
        else:
            factory = "IoTHubDeviceClient.create_from_x509_certificate"
            credential = _kw(
                "x509",
                cst.Call(
                    cst.Name("X509"),
                    [cst.Arg(args["cert_filepath"]), cst.Arg(args["pri_key_filepath"])],
                ),
            )
        new_args = [
            credential,
            _kw("hostname", cst.Name("IOTHUB_HOST")),
            _kw("device_id", device),
        ]
        if "keep_alive_secs" in args:
            keep_alive = cst.Call(cst.Name("iothub_keep_alive"), [cst.Arg(args["keep_alive_secs"])])
            new_args.append(_kw("keep_alive", keep_alive))
        self.changed = True
        return call.with_changes(
            func=cst.parse_expression(factory),
            args=_layout(new_args, call),
        )


def _refuse_crossing(text: str, clients: set[str], builders: set[str]) -> None:
    """Raise when the connection is built in one module and used in another."""
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return
    local = {name.rsplit(".", 1)[-1] for name in builders}
    for node in ast.walk(tree):
        if isinstance(node, ast.Return) and node.value is not None:
            value = node.value
            returned = ast.unparse(value)
            built = isinstance(value, ast.Call) and _call_name(value) in local
            if returned in clients or built:
                function = next(
                    (
                        f.name
                        for f in ast.walk(tree)
                        if isinstance(f, ast.FunctionDef | ast.AsyncFunctionDef)
                        and node in ast.walk(f)
                    ),
                    "a function",
                )
                raise PatchRefusedError(RETURNED_REFUSED.format(function))
    if clients or any(isinstance(n, ast.Call) and _call_name(n) in local for n in ast.walk(tree)):
        return
    uses = [m.group(1) for m in _CONNECTION_USE.finditer(text)]
    if not uses:
        return
    helper = re.search(r"\b([\w.]+build\w*connection\w*)\s*\(", text)
    raise PatchRefusedError(ELSEWHERE_REFUSED.format(helper.group(1) if helper else uses[0]))


def _call_name(call: ast.Call) -> str:
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")


def _websocket_branches(text: str) -> list[range] | None:
    """The SigV4 branches of a program that otherwise builds an X.509 connection."""
    if _WEBSOCKET not in text:
        return None
    return branch_lines(
        text,
        websocket=lambda call: _call_name(call) == _WEBSOCKET,
        x509=lambda call: _call_name(call) in _BUILDERS,
    )


def _layout(args: list[cst.Arg], original: cst.Call) -> list[cst.Arg]:
    """The new arguments laid out like the original call's (one per line stays so)."""
    separator: cst.Comma | cst.MaybeSentinel = cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))
    if len(original.args) > 1 and isinstance(original.args[0].comma, cst.Comma):
        separator = original.args[0].comma
    trailing = original.args[-1].comma if original.args else cst.MaybeSentinel.DEFAULT
    equal = cst.AssignEqual(cst.SimpleWhitespace(""), cst.SimpleWhitespace(""))
    out = [a.with_changes(comma=separator, equal=equal) for a in args[:-1]]
    out.append(args[-1].with_changes(comma=trailing, equal=equal))
    return out
