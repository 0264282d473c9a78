"""Node programs on aws-iot-device-sdk (v1) moved to Microsoft's azure-iot-device.

tree-sitter-javascript finds `require('aws-iot-device-sdk')` (or, in the SDK's own
examples, `require('..')` used with its constructors and `keyPath`/`certPath`/`caPath`
options) and the `device(...)` and
`thingShadow(...)` calls on it; those calls are renamed to the injected adapter's, their
`host` becomes the hub and their `clientId` the device id. The adapter answers publish,
subscribe, 'connect'/'message' events, shadow register/update/get and 'delta'/'status'
events with one azure-iot-device Client per device. `package.json` gains
azure-iot-device and azure-iot-device-mqtt. The v2 SDK (aws-crt), ES module imports and
the jobs API need a human.
"""

from __future__ import annotations

import json
import re
from importlib import resources

import tree_sitter_javascript
from tree_sitter import Language, Node, Parser, Tree

from bridge.firmware.models import TouchPoint
from bridge.firmware.recipes import PatchOptions, PatchRefusedError
from bridge.firmware.touch import touch_points
from firmware_patches._c import Edit, apply_edits
from firmware_patches._js import sas_key_expression

__all__ = ["RECIPE"]

JS = Language(tree_sitter_javascript.language())
SDK = "aws-iot-device-sdk"
_V1 = re.compile(r"""['"]aws-iot-device-sdk['"]""")  # v2 (aws-crt) has a recipe of its own
_CONSTRUCTORS = {"device": "iothubDevice", "thingShadow": "iothubThingShadow"}
# The SDK's own examples load it from the repository root: `require('..').device`. A
# relative require counts as the SDK only with its constructors and its option names.
_RELATIVE = re.compile(r"(?:\.\./?)+(?:index(?:\.js)?)?")
_RELATIVE_REQUIRE = re.compile(
    r"""require\(\s*['"](?:\.\./?)+(?:index(?:\.js)?)?['"]\s*\)"""
    r"""(?:\s*\.\s*(?:device|thingShadow|jobs)\b)?"""
)
_V1_SHAPE = re.compile(r"\b(?:thingShadow|device|jobs)\s*\(|\b(?:device|jobs)Module\s*\(")
_V1_OPTIONS = re.compile(r"\b(?:keyPath|certPath|caPath)\s*:")
AZURE_DEPENDENCIES = {"azure-iot-device": "^1.18.4", "azure-iot-device-mqtt": "^1.16.4"}
_BEGIN = "// >>> iot-bridge: IoT Hub adapter for aws-iot-device-sdk calls >>>"
_END = "// <<< iot-bridge: IoT Hub adapter for aws-iot-device-sdk calls <<<\n"
_REFUSED = {
    "aws-iot-device-sdk-v2": "aws-iot-device-sdk-v2 (aws-crt): port to azure-iot-device by hand",
    "aws-crt": "aws-crt connection: port to azure-iot-device by hand",
}
# The jobs API however it is bound: `awsIot.jobs(...)`, `require('..').jobs` (the SDK's
# examples/jobs-agent.js), `{ jobs } = require(...)`, and its calls.
_JOBS = re.compile(
    r"require\([^)]*\)\s*\.\s*jobs\b|\.\s*jobs\s*\(|\{[^}]*\bjobs\b[^}]*\}\s*=\s*require|"
    r"\bsubscribeToJobs\s*\(|\bstartJobNotifications\s*\("
)
JOBS_REFUSED = (
    "AWS IoT Jobs (jobs(), subscribeToJobs, startJobNotifications): IoT Hub has no "
    "per-device job queue; map job documents to direct methods by hand"
)
_REWRITTEN = {
    "endpoint": "host is the IoT Hub host (IOTHUB_HOST)",
    "config_key": "host is the IoT Hub host (IOTHUB_HOST)",
    "client_id": "clientId is the IoT Hub device id; one connection per device",
    "certificate": "same certificate and key: X.509 thumbprint authentication",
    "root_ca": "azure-iot-device trusts IoT Hub's roots itself",
    "keep_alive": "keep-alive capped at 1177 s",
    "topic": "publish becomes sendEvent(Message) with awsTopic properties",
    "shadow": "shadow update/get/delta become twin reported patch, twin GET, desired patches",
    "dependency": "azure-iot-device and azure-iot-device-mqtt added",
}


def parse_js(source: bytes) -> Tree:
    return Parser(JS).parse(source)


def error_count(tree: Tree) -> int:
    count, stack = 0, [tree.root_node]
    while stack:
        node = stack.pop()
        count += node.type == "ERROR" or node.is_missing
        stack.extend(node.children)
    return count


def _text(node: Node | None) -> str:
    return node.text.decode() if node is not None and node.text else ""


def _nodes(tree: Tree, kind: str) -> list[Node]:
    found, stack = [], [tree.root_node]
    while stack:
        node = stack.pop()
        if node.type == kind:
            found.append(node)
        stack.extend(reversed(node.children))
    return found


class NodeSdkRecipe:
    """The node_aws_iot_device_sdk recipe."""

    name = "node_aws_iot_device_sdk"
    stack = "node_aws_iot_device_sdk"

    def detect(self, path: str, text: str) -> bool:
        if path.rsplit("/", 1)[-1] == "package.json":
            return f'"{SDK}"' in text
        return path.endswith((".js", ".cjs", ".mjs", ".ts")) and (
            bool(_V1.search(text)) or _BEGIN in text or _in_repo_sdk(text)
        )

    def scan(self, path: str, text: str) -> list[TouchPoint]:
        return touch_points(path, text, self.stack, _REWRITTEN)

    def patch(self, path: str, text: str, options: PatchOptions) -> str | None:
        if path.endswith("package.json"):
            return _package_json(text)
        _refuse(text)
        source = text.encode()
        tree = parse_js(source)
        before = error_count(tree)
        local = _sdk_name(tree)
        if local is None:
            aliases = _constructor_aliases(tree)
            if aliases:
                return self._patch_aliases(path, source, tree, aliases, options, before)
            if _BEGIN in text:
                return _with_block(text, options)
            raise PatchRefusedError(f"{SDK} is not loaded with require(): needs a human")
        edits, ids = self._call_edits(tree, local, options)
        if options.device_id.mode == "client-id" and len(ids) > 1:
            raise PatchRefusedError(
                f"client objects use different ids ({', '.join(sorted(ids))}) and IoT Hub "
                "allows one connection per device: pass --device-id-from"
            )
        declaration = _declaration(tree, local)
        new = apply_edits(source, edits).decode()
        remaining = [n for n in _nodes(parse_js(new.encode()), "identifier") if _text(n) == local]
        if len(remaining) <= 1 and declaration is not None:
            # Only the require itself is left: the adapter block takes its place.
            start, end = declaration
            new = new[:start] + new[end:].removeprefix("\n")
            new = new[:start] + _block(options) + new[start:]
        else:
            new = _with_block(new, options)
        if error_count(parse_js(new.encode())) > before:
            raise PatchRefusedError(f"the rewrite of {path} would not parse")
        return new

    def _patch_aliases(  # noqa: PLR0917 - the file's parse and options
        self,
        path: str,
        source: bytes,
        tree: Tree,
        aliases: dict[str, tuple[str, Node]],
        options: PatchOptions,
        before: int,
    ) -> str:
        """`require(SDK).device` or `{ device } = require(SDK)`: the binding becomes the
        adapter's constructor and calls through the local name get their options mapped."""
        edits: dict[int, Edit] = {}
        ids: set[str] = set()
        for constructor, replaced in aliases.values():
            spelled = (
                constructor
                if replaced.type == "member_expression"
                else "{ " + ", ".join(f"{k}: {v}" for k, v in _CONSTRUCTORS.items()) + " }"
            )
            edits[replaced.start_byte] = Edit(
                replaced.start_byte, replaced.end_byte, spelled.encode()
            )
        for call in _nodes(tree, "call_expression"):
            function = call.child_by_field_name("function")
            if function is None or function.type != "identifier" or _text(function) not in aliases:
                continue
            arguments = call.child_by_field_name("arguments")
            literal = (
                arguments.named_children[0] if arguments and arguments.named_children else None
            )
            if literal is None or literal.type != "object":
                raise PatchRefusedError("device options are not an object literal: needs a human")
            for edit in _option_edits(literal, options, ids):
                edits[edit.start] = edit
        if options.device_id.mode == "client-id" and len(ids) > 1:
            raise PatchRefusedError(
                f"client objects use different ids ({', '.join(sorted(ids))}) and IoT Hub "
                "allows one connection per device: pass --device-id-from"
            )
        new = _with_block(apply_edits(source, list(edits.values())).decode(), options)
        if error_count(parse_js(new.encode())) > before:
            raise PatchRefusedError(f"the rewrite of {path} would not parse")
        return new

    def _call_edits(
        self, tree: Tree, local: str, options: PatchOptions
    ) -> tuple[list[Edit], set[str]]:
        edits: list[Edit] = []
        ids: set[str] = set()
        for call in _nodes(tree, "call_expression"):
            function = call.child_by_field_name("function")
            if function is None or function.type != "member_expression":
                continue
            obj, prop = (
                function.child_by_field_name("object"),
                function.child_by_field_name("property"),
            )
            if _text(obj) != local or _text(prop) not in _CONSTRUCTORS:
                continue
            edits.append(
                Edit(function.start_byte, function.end_byte, _CONSTRUCTORS[_text(prop)].encode())
            )
            arguments = call.child_by_field_name("arguments")
            literal = (
                arguments.named_children[0] if arguments and arguments.named_children else None
            )
            if literal is None or literal.type != "object":
                raise PatchRefusedError("device options are not an object literal: needs a human")
            edits.extend(_option_edits(literal, options, ids))
        return edits, ids


def _option_edits(literal: Node, options: PatchOptions, ids: set[str]) -> list[Edit]:
    """`host` becomes the hub, `clientId` the device id; a wss protocol is refused."""
    edits = []
    for pair in literal.named_children:
        key, value = pair.child_by_field_name("key"), pair.child_by_field_name("value")
        if pair.type != "pair" or value is None:
            continue
        name = _text(key).strip("'\"")
        if name == "host":
            edits.append(Edit(value.start_byte, value.end_byte, b"IOTHUB_HOST"))
        elif name == "clientId":
            ids.add(_text(value))
            device = _device_id(options, _text(value))
            edits.append(Edit(value.start_byte, value.end_byte, device.encode()))
        elif name == "protocol" and "wss" in _text(value):
            raise PatchRefusedError("SigV4 websocket: IoT Hub needs X.509 or SAS")
    return edits


def _device_id(options: PatchOptions, client_id: str) -> str:
    source = options.device_id
    if source.mode == "env":
        return f"process.env.{source.value}"
    if source.mode == "literal":
        return json.dumps(source.value)
    if re.search(r"Math\.random|uuid|Date\.now|randomBytes", client_id):
        raise PatchRefusedError(
            "the client id is random, so it cannot be the device id: pass --device-id-from"
        )
    return client_id


def _sdk_name(tree: Tree) -> str | None:
    for declarator in _nodes(tree, "variable_declarator"):
        value = declarator.child_by_field_name("value")
        if (
            value is not None
            and _text(declarator.child_by_field_name("name")).isidentifier()
            and value.type == "call_expression"
            and _text(value.child_by_field_name("function")) == "require"
            and (
                SDK in _text(value.child_by_field_name("arguments"))
                or _names_sdk(_text(value.child_by_field_name("arguments")), _whole(value))
            )
        ):
            return _text(declarator.child_by_field_name("name"))
    return None


def _constructor_aliases(tree: Tree) -> dict[str, tuple[str, Node]]:
    """Local names bound to the SDK's constructors, and the expression each came from.

    `const deviceModule = require('aws-iot-device-sdk').device` (AWS's own examples) and
    `const { device, thingShadow: shadow } = require('aws-iot-device-sdk')`.
    """
    aliases: dict[str, tuple[str, Node]] = {}
    for declarator in _nodes(tree, "variable_declarator"):
        name, value = (
            declarator.child_by_field_name("name"),
            declarator.child_by_field_name("value"),
        )
        if name is None or value is None:
            continue
        if value.type == "member_expression" and name.type == "identifier":
            prop = _text(value.child_by_field_name("property"))
            if _is_sdk_require(value.child_by_field_name("object")) and prop in _CONSTRUCTORS:
                aliases[_text(name)] = (_CONSTRUCTORS[prop], value)
        elif name.type == "object_pattern" and _is_sdk_require(value):
            for entry in name.named_children:
                if entry.type == "shorthand_property_identifier_pattern":
                    key = local = _text(entry)
                elif entry.type == "pair_pattern":
                    key = _text(entry.child_by_field_name("key")).strip("'\"")
                    local = _text(entry.child_by_field_name("value"))
                else:
                    continue
                if key in _CONSTRUCTORS:
                    aliases[local] = (_CONSTRUCTORS[key], value)
    return aliases


def _refuse(text: str) -> None:
    """Raise for the shapes this recipe leaves to a human: v2/aws-crt and the jobs API."""
    for marker, reason in _REFUSED.items():
        if marker in text:
            raise PatchRefusedError(reason)
    if _JOBS.search(text):
        raise PatchRefusedError(JOBS_REFUSED)


def _in_repo_sdk(text: str) -> bool:
    """The SDK loaded from its own repository (`require('..')`), as its examples do:
    recognised by the constructors it calls and the options only this SDK takes."""
    return bool(
        _RELATIVE_REQUIRE.search(text) and _V1_SHAPE.search(text) and _V1_OPTIONS.search(text)
    )


def _names_sdk(spec: str, text: str) -> bool:
    """Whether a require()'s argument loads the SDK: by name, or relatively from the
    SDK's own repository."""
    spec = spec.strip("()'\"` ")
    return spec == SDK or (_RELATIVE.fullmatch(spec) is not None and _in_repo_sdk(text))


def _is_sdk_require(node: Node | None) -> bool:
    return (
        node is not None
        and node.type == "call_expression"
        and _text(node.child_by_field_name("function")) == "require"
        and _names_sdk(_text(node.child_by_field_name("arguments")), _whole(node))
    )


def _whole(node: Node) -> str:
    """The text of the file `node` was parsed from."""
    while node.parent is not None:
        node = node.parent
    return _text(node)


def _declaration(tree: Tree, local: str) -> tuple[int, int] | None:
    for statement in tree.root_node.named_children:
        if statement.type in {"lexical_declaration", "variable_declaration"} and local in _text(
            statement
        ):
            names = [_text(d.child_by_field_name("name")) for d in statement.named_children]
            if names == [local]:
                return statement.start_byte, statement.end_byte
    return None


def _block(options: PatchOptions) -> str:
    text = (
        resources.files("firmware_patches._runtime")
        .joinpath("aws_iot_device_sdk_adapter.js")
        .read_text()
    )
    block = text[text.index(_BEGIN) : text.index(_END) + len(_END)]
    return (
        block.replace("@HUB@", options.hub)
        .replace("@AUTH_MODE@", options.auth)
        .replace("@SAS_KEY@", sas_key_expression(options, "iothubFs"))
    )


def _with_block(text: str, options: PatchOptions) -> str:
    if _BEGIN in text:
        head, _, rest = text.partition(_BEGIN)
        return head + _block(options) + rest.partition(_END)[2]
    # After the leading comments and requires, before the program's own code.
    lines = text.splitlines(keepends=True)
    position = 0
    for index, line in enumerate(lines):
        if (
            line.startswith(("//", "'use strict'", '"use strict"'))
            or "require(" in line
            or not line.strip()
        ):
            position = index + 1
        else:
            break
    return "".join(lines[:position]) + _block(options) + "".join(lines[position:])


def _package_json(text: str) -> str | None:
    document = json.loads(text)
    dependencies = document.setdefault("dependencies", {})
    if SDK not in dependencies or all(name in dependencies for name in AZURE_DEPENDENCIES):
        return None
    dependencies.update({k: v for k, v in AZURE_DEPENDENCIES.items() if k not in dependencies})
    indent = re.search(r"\n(\s+)\"", text)
    return (
        json.dumps(document, indent=len(indent.group(1)) if indent else 2, ensure_ascii=False)
        + "\n"
    )


RECIPE = NodeSdkRecipe()
