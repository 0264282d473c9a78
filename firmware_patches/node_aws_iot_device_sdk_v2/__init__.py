"""Node programs on aws-iot-device-sdk-v2 (aws-crt MQTT 3.1.1) moved to azure-iot-device.

tree-sitter (JavaScript, TypeScript) finds where the program loads the SDK
(`require('aws-iot-device-sdk-v2')`, `import { mqtt, iot } from 'aws-iot-device-sdk-v2'`,
the same from `aws-crt`) and the connection builder's calls. The SDK binding becomes the
injected adapter (`iothubAwsIotV2`), which answers `mqtt.MqttClient`,
`iot.AwsIotMqttConnectionConfigBuilder.new_mtls_builder_from_path`/`new_mtls_builder`, the
connection's connect/publish/subscribe/events and `iotshadow.IotShadowClient` with one
azure-iot-device Client; `with_endpoint(...)` becomes the hub and `with_client_id(...)`
the device id. The rest of the program is not touched. MQTT 5 clients, websockets,
custom authorizers, PKCS#11, the jobs and identity clients need a human (see _REFUSED).
"""

from __future__ import annotations

import json
import re
from importlib import resources

from tree_sitter import Node, Tree

from bridge.firmware.models import TouchPoint
from bridge.firmware.recipes import PatchOptions, PatchRefusedError
from bridge.firmware.touch import RULES, Rule, touch_points
from firmware_patches._c import Edit, apply_edits
from firmware_patches._js import error_count, nodes, parse_script, sas_key_expression, text_of

__all__ = ["RECIPE"]

MODULES = ("aws-iot-device-sdk-v2", "aws-crt")
_LOADS = re.compile(r"""(?:require\(\s*|from\s+)['"](?:aws-iot-device-sdk-v2|aws-crt)['"]""")
AZURE_DEPENDENCIES = {"azure-iot-device": "^1.18.4", "azure-iot-device-mqtt": "^1.16.4"}
_BEGIN = "// >>> iot-bridge: IoT Hub adapter for aws-iot-device-sdk-v2 calls >>>"
_END = "// <<< iot-bridge: IoT Hub adapter for aws-iot-device-sdk-v2 calls <<<\n"
_SUFFIXES = (".js", ".cjs", ".mjs", ".ts", ".mts", ".cts")
# Calls whose meaning has no mechanical IoT Hub equivalent, and why.
_REFUSED = {
    "mqtt5": "MQTT 5 client (mqtt5.Mqtt5Client): IoT Hub speaks MQTT 3.1.1; port by hand",
    "AwsIotMqtt5ClientConfigBuilder": "MQTT 5 client: IoT Hub speaks MQTT 3.1.1; port by hand",
    "new_with_websockets": "SigV4 websocket: IoT Hub needs X.509 or SAS",
    "new_builder_for_websocket": "SigV4 websocket: IoT Hub needs X.509 or SAS",
    "with_credentials": "SigV4 credentials: IoT Hub needs X.509 or SAS",
    "with_custom_authorizer": "AWS custom authorizer: IoT Hub needs X.509 or SAS",
    "new_default_builder": "connection without a device certificate: needs a human",
    "new_mtls_pkcs11_builder": "PKCS#11 key: wire it into azure-iot-device by hand",
    "new_mtls_windows_cert_store_path_builder": "Windows certificate store: by hand",
    "new_mtls_pkcs12_builder": "PKCS#12 bundle: export the certificate and key to PEM",
    "iotjobs": "AWS IoT Jobs: azure-iot-device has no catch-all direct method handler; "
    "map each job document to a named direct method by hand",
    "iotidentity": "fleet provisioning: replace with the Device Provisioning Service (DPS)",
    "greengrass": "Greengrass: move to IoT Edge by hand",
}
_BUILDERS = ("new_mtls_builder_from_path", "new_mtls_builder")
_REWRITTEN = {
    "endpoint": "with_endpoint(...) is the IoT Hub host (IOTHUB_HOST)",
    "config_key": "with_endpoint(...) is the IoT Hub host (IOTHUB_HOST)",
    "client_id": "with_client_id(...) is the IoT Hub device id; one connection per device",
    "certificate": "same certificate and key: X.509 thumbprint authentication",
    "root_ca": "azure-iot-device trusts IoT Hub's roots itself",
    "keep_alive": "keep-alive capped at 1177 s",
    "topic": "publish becomes sendEvent(Message) with awsTopic properties",
    "shadow": "shadow update/get/delta become twin reported patch, twin GET, desired patches",
    "named_shadow": "named shadow mapped to twin properties under shadows.<name>",
    "dependency": "azure-iot-device and azure-iot-device-mqtt added",
    "sdk": "the SDK binding becomes the IoT Hub adapter (iothubAwsIotV2)",
}
# The v2 API's own spellings, which the shared rules do not know; named shadows first.
_V2_RULES = (
    Rule("sdk", _LOADS, "the SDK is loaded here"),
    Rule("named_shadow", re.compile(r"NamedShadow"), "named shadow"),
    Rule("shadow", re.compile(r"IotShadowClient|Shadow(?:Accepted|Rejected|Events)?\("), "shadow"),
    Rule("config_key", re.compile(r"\.with_endpoint\("), "endpoint"),
    Rule("client_id", re.compile(r"\.with_client_id\("), "client id"),
    Rule("certificate", re.compile(r"new_mtls_builder"), "certificate"),
    Rule("root_ca", re.compile(r"with_certificate_authority"), "trust anchor"),
)
_RANDOM = re.compile(r"Math\.random|uuid|Date\.now|randomBytes|randomUUID|nanoid|createId")


class NodeSdkV2Recipe:
    """The node_aws_iot_device_sdk_v2 recipe."""

    name = "node_aws_iot_device_sdk_v2"
    stack = "node_aws_iot_device_sdk_v2"

    def detect(self, path: str, text: str) -> bool:
        if path.rsplit("/", 1)[-1] == "package.json":
            return any(f'"{module}"' in text for module in MODULES)
        return path.endswith(_SUFFIXES) and (bool(_LOADS.search(text)) or _BEGIN in text)

    def scan(self, path: str, text: str) -> list[TouchPoint]:
        return touch_points(path, text, self.stack, _REWRITTEN, rules=(*_V2_RULES, *RULES))

    def patch(self, path: str, text: str, options: PatchOptions) -> str | None:
        if path.endswith("package.json"):
            return _package_json(text)
        for marker, reason in _REFUSED.items():
            if re.search(rf"\b{marker}\b", _code_only(path, text)):
                raise PatchRefusedError(reason)
        unanswered = _unanswered_calls(_code_only(path, text))
        if unanswered:
            raise PatchRefusedError(
                f"aws-iot-device-sdk-v2 calls the adapter does not answer: {', '.join(unanswered)}"
            )
        source = text.encode()
        tree = parse_script(path, source)
        before = error_count(tree)
        loads = _sdk_loads(tree)
        if not loads and _BEGIN not in text:
            raise PatchRefusedError("aws-iot-device-sdk-v2 is loaded dynamically: needs a human")
        edits = [edit for _, edit in loads]
        edits += _builder_edits(tree, options)
        new = apply_edits(source, edits).decode()
        new = _with_block(new, path, options, esm=any(kind == "import" for kind, _ in loads))
        if error_count(parse_script(path, new.encode())) > before:
            raise PatchRefusedError(f"the rewrite of {path} would not parse")
        return new


# Builder settings and shadow-client calls are the v2 API's own spellings; one the adapter
# does not define would fail at run time, so the patch refuses it instead.
_SDK_CALL = re.compile(r"\.(with_\w+|(?:publish|subscribeTo)\w*Shadow\w*)\s*\(")


def _adapter_text() -> str:
    return (
        resources.files("firmware_patches._runtime")
        .joinpath("aws_iot_device_sdk_v2_adapter.js")
        .read_text()
    )


def _unanswered_calls(program: str) -> list[str]:
    defined = set(re.findall(r"^\s*(?:async\s+)?(\w+)\s*\(", _adapter_text(), re.MULTILINE))
    return sorted(set(_SDK_CALL.findall(program)) - defined)


def _code_only(path: str, text: str) -> str:
    """The program without comments and without a former patch's adapter block."""
    if _BEGIN in text:
        head, _, rest = text.partition(_BEGIN)
        text = head + rest.partition(_END)[2]
    tree = parse_script(path, text.encode())
    comments = nodes(tree.root_node, "comment")
    source = text.encode()
    for comment in reversed(comments):
        source = source[: comment.start_byte] + source[comment.end_byte :]
    return source.decode()


def _sdk_loads(tree: Tree) -> list[tuple[str, Edit]]:
    """Each place the SDK is loaded, as an edit binding the same names to the adapter."""
    loads: list[tuple[str, Edit]] = []
    for statement in nodes(tree.root_node, "import_statement"):
        source = text_of(statement.child_by_field_name("source")).strip("'\"")
        if source not in MODULES:
            continue
        clause = next((c for c in statement.named_children if c.type == "import_clause"), None)
        if clause is None or len(clause.named_children) != 1:
            raise PatchRefusedError(f"import of {source} has no single binding: needs a human")
        binding = clause.named_children[0]
        pattern = _binding(binding)
        replacement = f"const {pattern} = iothubAwsIotV2;"
        loads.append(
            ("import", Edit(statement.start_byte, statement.end_byte, replacement.encode()))
        )
    for call in nodes(tree.root_node, "call_expression"):
        function = call.child_by_field_name("function")
        arguments = call.child_by_field_name("arguments")
        if text_of(function) != "require" or arguments is None:
            continue
        if text_of(arguments).strip("()'\" ") in MODULES:
            loads.append(("require", Edit(call.start_byte, call.end_byte, b"iothubAwsIotV2")))
    return loads


def _binding(node: Node) -> str:
    if node.type == "identifier":
        return text_of(node)  # default import: the module object
    if node.type == "namespace_import":
        return text_of(node.named_children[0])
    names = []
    for specifier in node.named_children:
        name = text_of(specifier.child_by_field_name("name"))
        alias = specifier.child_by_field_name("alias")
        names.append(f"{name}: {text_of(alias)}" if alias is not None else name)
    return "{ " + ", ".join(names) + " }"


def _calls(tree: Tree, method: str) -> list[Node]:
    found = []
    for call in nodes(tree.root_node, "call_expression"):
        function = call.child_by_field_name("function")
        if (
            function is not None
            and function.type == "member_expression"
            and text_of(function.child_by_field_name("property")) == method
        ):
            found.append(call)
    return found


def _only_argument(call: Node) -> Node:
    arguments = call.child_by_field_name("arguments")
    args = arguments.named_children if arguments is not None else []
    if len(args) != 1:
        function = text_of(call.child_by_field_name("function"))
        raise PatchRefusedError(f"{function} with {len(args)} arguments: needs a human")
    return args[0]


def _builder_edits(tree: Tree, options: PatchOptions) -> list[Edit]:
    if not any(_calls(tree, builder) for builder in _BUILDERS) and _calls(tree, "new_connection"):
        raise PatchRefusedError(
            "connection config not built with new_mtls_builder_from_path: needs a human"
        )
    edits = []
    for call in _calls(tree, "with_endpoint"):
        argument = _only_argument(call)
        edits.append(Edit(argument.start_byte, argument.end_byte, b"IOTHUB_HOST"))
    ids = set()
    assignments = _assignments(tree)
    for call in _calls(tree, "with_client_id"):
        argument = _only_argument(call)
        spelled = text_of(argument)
        ids.add(spelled)
        device = _device_id(options, spelled, assignments.get(spelled, spelled))
        edits.append(Edit(argument.start_byte, argument.end_byte, device.encode()))
    if options.device_id.mode == "client-id" and len(ids) > 1:
        raise PatchRefusedError(
            f"connections use different ids ({', '.join(sorted(ids))}) and IoT Hub allows "
            "one connection per device: pass --device-id-from"
        )
    return edits


def _assignments(tree: Tree) -> dict[str, str]:
    """`name -> initial value` for simple declarations, to see through `clientId` vars."""
    found = {}
    for declarator in nodes(tree.root_node, "variable_declarator"):
        name, value = (
            declarator.child_by_field_name("name"),
            declarator.child_by_field_name("value"),
        )
        if name is not None and name.type == "identifier" and value is not None:
            found[text_of(name)] = text_of(value)
    return found


def _device_id(options: PatchOptions, client_id: str, value: str) -> str:
    source = options.device_id
    if source.mode == "env":
        return f"process.env.{source.value}"
    if source.mode == "literal":
        return json.dumps(source.value)
    if _RANDOM.search(client_id) or _RANDOM.search(value):
        raise PatchRefusedError(
            "the client id is random, so it cannot be the device id: pass --device-id-from"
        )
    return client_id


def _block(path: str, options: PatchOptions, *, esm: bool) -> str:
    text = _adapter_text()
    block = text[text.index(_BEGIN) : text.index(_END) + len(_END)]
    if esm and not path.endswith((".ts", ".mts", ".cts")):
        loader = (
            "import { createRequire as iothubCreateRequire } from 'module';\n"
            "const iothubRequire = iothubCreateRequire(import.meta.url);"
        )
    else:
        loader = "const iothubRequire = require;"
    if options.auth == "sas":
        source = options.sas_key
        auth = f"a SAS token from the device key in {source.mode} {source.value}"
    else:
        auth = "the device's existing certificate and key (X.509 thumbprint)"
    expression = sas_key_expression(options, "iothubRequire('fs')")
    return (
        block.replace("@REQUIRE@", loader)
        .replace("@HUB@", options.hub)
        .replace("@AUTH_MODE@", options.auth)
        .replace("@AUTH@", auth)
        .replace("@SAS_KEY@", expression)
    )


def _with_block(text: str, path: str, options: PatchOptions, *, esm: bool) -> str:
    block = _block(path, options, esm=esm or "iothubCreateRequire" in text)
    if _BEGIN in text:
        head, _, rest = text.partition(_BEGIN)
        return head + block + rest.partition(_END)[2]
    # Right before the top-level statement that first binds the adapter: it must exist
    # before that statement runs.
    tree = parse_script(path, text.encode())
    for statement in tree.root_node.named_children:
        if "iothubAwsIotV2" in text_of(statement):
            start = statement.start_byte
            source = text.encode()
            return (source[:start] + block.encode() + source[start:]).decode()
    raise PatchRefusedError("no top-level statement loads aws-iot-device-sdk-v2: needs a human")


def _package_json(text: str) -> str | None:
    document = json.loads(text)
    dependencies = document.setdefault("dependencies", {})
    if not any(module in dependencies for module in MODULES):
        return None
    if all(name in dependencies for name in AZURE_DEPENDENCIES):
        return None
    dependencies.update({k: v for k, v in AZURE_DEPENDENCIES.items() if k not in dependencies})
    indent = re.search(r"\n(\s+)\"", text)
    return (
        json.dumps(document, indent=len(indent.group(1)) if indent else 2, ensure_ascii=False)
        + "\n"
    )


RECIPE = NodeSdkV2Recipe()
