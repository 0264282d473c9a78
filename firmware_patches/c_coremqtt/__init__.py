"""FreeRTOS coreMQTT demos (`demo_config.h`, `aws_clientcredential.h`) moved to IoT Hub's MQTT.

Stays on coreMQTT, as the issue asks for C: with tree-sitter-c the recipe finds the
broker endpoint define and points it at the hub, adds `democonfigIOTHUB_USERNAME` (IoT
Hub's user name, built from the client identifier define) and sets it on the
`MQTTConnectInfo_t` next to the client identifier, caps the keep-alive at 1177 s, and
turns telemetry topic defines whose value resolves at patch time into
`devices/{id}/messages/events/` plus the awsTopic properties. Shadow and jobs topics, the
root CA (IoT Hub's roots must be embedded) and TLS wiring need a human.
"""

from __future__ import annotations

import re

from tree_sitter import Node, Tree

from bridge.firmware.models import TouchPoint
from bridge.firmware.recipes import (
    IOTHUB_API_VERSION,
    IOTHUB_MAX_KEEP_ALIVE,
    PatchOptions,
    PatchRefusedError,
)
from bridge.firmware.touch import RULES, Rule, touch_points
from bridge.mapping.topics import topic_properties
from firmware_patches._c import (
    ROOTS_NAME,
    SAS_REFUSED,
    Define,
    Edit,
    apply_edits,
    defines,
    error_count,
    iothub_roots_c,
    parse_c,
    resolve_string,
    roots_definition,
)

_MARKER = re.compile(r"core_mqtt|MQTT_Connect|clientcredential|democonfig")
# The AWS IoT Device SDK for Embedded C's demos (aws-iot-device-sdk-embedded-C/demos/*):
# their demo_config.h names neither coreMQTT nor democonfig, only these settings.
_EMBEDDED_C_CONFIG = re.compile(r"#\s*define\s+(?:AWS_IOT_ENDPOINT|CLIENT_IDENTIFIER)\b")
_ENDPOINT = next(rule.pattern for rule in RULES if rule.kind == "endpoint")
_ID_NAMES = ("democonfigCLIENT_IDENTIFIER", "clientcredentialIOT_THING_NAME", "CLIENT_IDENTIFIER")
_ENDPOINT_NAMES = (
    "democonfigMQTT_BROKER_ENDPOINT",
    "clientcredentialMQTT_BROKER_ENDPOINT",
    "AWS_IOT_ENDPOINT",
)
USERNAME = "democonfigIOTHUB_USERNAME"
_ROOT_CA_NAMES = ("democonfigROOT_CA_PEM", "keyCA_CERTIFICATE_PEM", "tlsATS1_ROOT_CERTIFICATE_PEM")
_SOURCE_TOPIC = (
    "topic defined in a source file (the recipe rewrites topic defines in settings headers "
    "only, where the client id is known): "
    "point it at devices/{id}/messages/events/ with the awsTopic properties by hand"
)
# The coreMQTT Device Shadow library (esp-aws-iot 202x, FreeRTOS LTS): AWS topic builders.
_RULES = (
    Rule(
        "shadow",
        re.compile(r"\bShadow_\w+|\bSHADOW_TOPIC_\w+"),
        "Device Shadow library: its topics and documents are AWS's; map them to "
        "$iothub/twin/... by hand",
    ),
    Rule(
        "username",
        re.compile(r"\bpUserName\s*=\s*\(?\s*\w*METRICS_STRING\w*\s*\)?\s*;"),
        "AWS's metrics user name (?SDK=...&Platform=...): IoT Hub refuses it; send "
        "{hub}/{device id}/?api-version=2021-04-12",
    ),
    Rule(
        "username_password",
        re.compile(r"\bpUserName\s*=\s*(?!\(?\s*\w*METRICS_STRING\w*\s*\)?\s*;)\w"),
        "the program's own user name (username/password, a custom authorizer): IoT Hub "
        "authenticates with the certificate or a SAS token; left as it is",
    ),
)
# The Embedded C SDK's demos hand OpenSSL a root CA *file* (ROOT_CA_CERT_PATH, default
# certificates/AmazonRootCA1.crt): there is no PEM in the source to replace.
_ROOT_CA_PATH = re.compile(r"ROOT_CA_CERT_PATH|pRootCaPath")
ROOT_CA_PATH_REASON = (
    "OpenSSL reads the root CA from a file (ROOT_CA_CERT_PATH, AWS's AmazonRootCA1.crt): "
    "put IoT Hub's roots (DigiCert Global Root G2 and Microsoft RSA Root CA 2017) in a "
    "PEM file and point ROOT_CA_CERT_PATH at it"
)
_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~")
_REWRITTEN = {
    "endpoint": "broker endpoint define points at the IoT Hub host",
    "config_key": "broker endpoint define points at the IoT Hub host",
    "client_id": "client identifier is the device id; IoT Hub's user name is added",
    "keep_alive": "keep-alive capped at 1177 s",
    "certificate": "same certificate and key: register the thumbprint in IoT Hub",
    "root_ca": "the root CA define holds IoT Hub's roots (DigiCert Global Root G2, "
    "Microsoft RSA Root CA 2017)",
    "topic": "telemetry topics become devices/{id}/messages/events/ with awsTopic properties",
    "username": "AWS's metrics user name becomes IoT Hub's ({hub}/{device id}/?api-version=...)",
}


def _root_ca_edits(define: Define) -> list[Edit]:
    """AWS's root CA define becomes IoT Hub's two roots, one continued line per PEM line."""
    value = define.value_node
    pem = " \\\n" + " \\\n".join(iothub_roots_c().split("\n"))
    if value is None or define.value.strip() == pem.lstrip():
        return []
    text = value.text.decode() if value.text else ""
    start = value.start_byte + len(text) - len(text.lstrip())
    return [Edit(start, value.end_byte, pem.lstrip().encode())]


# Where FreeRTOS demos keep their settings; a file including none of them (esp-aws-iot's
# coreMQTT examples, settings from sdkconfig's CONFIG_MQTT_*) gets the user name locally.
_CONFIG_HEADERS = re.compile(r'#include\s+"(?:demo_config|aws_clientcredential\w*|iot_config)\.h"')


def _local_username(source: bytes, tree: Tree, client_id: str, options: PatchOptions) -> list[Edit]:
    if _CONFIG_HEADERS.search(source.decode()) or USERNAME.encode() in source:
        return []
    if not re.fullmatch(r"[A-Z_][A-Z0-9_]*", client_id):
        raise PatchRefusedError(
            f"client identifier {client_id} is computed at run time: build IoT Hub's user "
            "name by hand"
        )
    position = 0
    for node in tree.root_node.named_children:
        if node.type in {"preproc_include", "preproc_def"}:
            position = node.end_byte
    user = (
        f"#ifndef {USERNAME}\n"
        f'#define {USERNAME} "{options.hub}/" {client_id} "/?api-version={IOTHUB_API_VERSION}"\n'
        "#endif\n"
    )
    return [Edit(position, position, user.encode())]


def _keep_alive_edits(define: Define) -> list[Edit]:
    number = re.search(r"\d+", define.value)
    if define.value_node is None or not number or int(number.group()) <= IOTHUB_MAX_KEEP_ALIVE:
        return []
    value = define.value_node
    return [Edit(value.start_byte, value.end_byte, f"( {IOTHUB_MAX_KEEP_ALIVE}U )".encode())]


def _server_root_ca_edits(tree: Tree) -> list[Edit]:
    """esp-aws-iot's `NetworkContext_t.pcServerRootCA = X;`: IoT Hub's roots instead."""
    edits: list[Edit] = []
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        stack.extend(node.children)
        if node.type != "assignment_expression":
            continue
        left, right = node.child_by_field_name("left"), node.child_by_field_name("right")
        field = left.child_by_field_name("field") if left is not None else None
        if field is None or right is None:
            continue
        new = {
            b"pcServerRootCA": ROOTS_NAME,
            b"pcServerRootCASize": f"sizeof( {ROOTS_NAME} )",
        }.get(field.text or b"")
        if new is not None and right.text != new.encode():
            edits.append(Edit(right.start_byte, right.end_byte, new.encode()))
    definition = roots_definition(tree) if edits else None
    return edits if definition is None else [*edits, definition]


def _quote(text: str) -> str:
    return "".join(c if c in _SAFE else "".join(f"%{b:02X}" for b in c.encode()) for c in text)


def iothub_telemetry_topic(device_id: str, aws_topic: str) -> str:
    """IoT Hub's telemetry topic carrying `aws_topic` as the relay's properties."""
    bag = "&".join(f"{_quote(k)}={_quote(v)}" for k, v in topic_properties(aws_topic).items())
    return f"devices/{device_id}/messages/events/{bag}"


_TOPIC_DEFINE = re.compile(r"^[ \t]*#[ \t]*define[ \t]+(\w*TOPIC\w*)[ \t]+[^\n]*\"", re.MULTILINE)
_TOPIC_USE = re.compile(r"\b(?:pTopicName|pTopicFilter)\s*=\s*\(?\s*(\w+)")


def _source_topics(text: str) -> dict[str, int]:
    """The topic macros a source file defines as strings and publishes or subscribes to,
    with the line of each define (AWS's own `$aws/` topics are reported as such)."""
    used = set(_TOPIC_USE.findall(text))
    return {
        match.group(1): text.count("\n", 0, match.start()) + 1
        for match in _TOPIC_DEFINE.finditer(text)
        if match.group(1) in used and "$aws/" not in match.group()
    }


def _after_guard(source: bytes, define: Define) -> int:
    """Where a define following `define` goes: after it, or after the `#ifndef NAME` ...
    `#endif` around it (the Embedded C demos' `CLIENT_IDENTIFIER`), so that it is also
    defined when the build passes -DNAME."""
    parent = define.node.parent
    name = parent.child_by_field_name("name") if parent is not None else None
    if parent is None or parent.type != "preproc_ifdef" or name is None:
        return define.node.end_byte
    if name.text is None or name.text.decode() != define.name:
        return define.node.end_byte
    end = source.find(b"\n", parent.end_byte)
    return len(source) if end < 0 else end + 1


class CoreMqttRecipe:
    """The c_coremqtt recipe."""

    name = "c_coremqtt"
    stack = "c_coremqtt"

    def detect(self, path: str, text: str) -> bool:
        return path.endswith((".c", ".h")) and bool(
            _MARKER.search(text)
            or (path.endswith("demo_config.h") and _EMBEDDED_C_CONFIG.search(text))
        )

    def scan(self, path: str, text: str) -> list[TouchPoint]:
        points = touch_points(path, text, self.stack, _REWRITTEN, rules=(*_RULES, *RULES))
        lines = text.splitlines()
        points = [
            p.model_copy(update={"verdict": "needs_human", "reason": ROOT_CA_PATH_REASON})
            if p.kind == "root_ca" and _ROOT_CA_PATH.search(lines[p.line - 1])
            else p
            for p in points
        ]
        if path.endswith(".c"):
            # Topic defines are rewritten in the settings headers only: a topic the source
            # file defines itself (the Embedded C demos' `#define MQTT_EXAMPLE_TOPIC
            # CLIENT_IDENTIFIER "/example/topic"`) stays AWS's, and so do its publishes.
            own = _source_topics(text)
            points = [
                p.model_copy(update={"verdict": "needs_human", "reason": _SOURCE_TOPIC})
                if p.kind == "topic" and (re.match(r"\s*#\s*define\b", lines[p.line - 1]) or own)
                else p
                for p in points
            ]
            seen = {p.line for p in points if p.kind == "topic"}
            points += [
                TouchPoint(
                    file=path,
                    line=line,
                    kind="topic",
                    stack=self.stack,
                    verdict="needs_human",
                    reason=_SOURCE_TOPIC,
                )
                for line in own.values()
                if line not in seen
            ]
            points.sort(key=lambda point: point.line)
        for index, line in enumerate(text.splitlines(), start=1):
            if "$aws/" in line:
                points = [
                    p.model_copy(
                        update={
                            "verdict": "needs_human",
                            "reason": "shadow and jobs "
                            "topics in C need the payload reshaped: by hand",
                        }
                    )
                    if p.line == index
                    else p
                    for p in points
                ]
        return points

    def patch(self, path: str, text: str, options: PatchOptions) -> str | None:
        if options.auth == "sas":
            raise PatchRefusedError(SAS_REFUSED)
        source = text.encode()
        tree = parse_c(source)
        before = error_count(tree)
        edits = (
            self._header_edits(source, tree, options)
            if path.endswith(".h")
            else self._source_edits(source, tree, options)
        )
        if not edits:
            return None
        new = apply_edits(source, edits)
        if error_count(parse_c(new)) > before:
            raise PatchRefusedError(f"the rewrite of {path} would not parse")
        return new.decode()

    def _header_edits(self, source: bytes, tree: Tree, options: PatchOptions) -> list[Edit]:
        found = defines(tree)
        known = {d.name: d.value for d in found}
        device = next((d for d in found if d.name in _ID_NAMES), None)
        device_id = resolve_string(device.value, known) if device else None
        edits: list[Edit] = []
        for define in found:
            value = define.value_node
            if value is None:
                continue
            resolved = resolve_string(define.value, known)
            if define.name in _ENDPOINT_NAMES or (resolved and _ENDPOINT.fullmatch(resolved)):
                if resolved != options.hub:
                    edits.append(
                        Edit(value.start_byte, value.end_byte, f'"{options.hub}"'.encode())
                    )
            elif define.name in _ROOT_CA_NAMES:
                edits += _root_ca_edits(define)
            elif "KEEP_ALIVE" in define.name.upper():
                edits += _keep_alive_edits(define)
            elif (
                "TOPIC" in define.name.upper()
                and resolved
                and not resolved.startswith(("$", "devices/"))
            ):
                if device_id is None:
                    raise PatchRefusedError("topic defines need a resolvable client identifier")
                topic = iothub_telemetry_topic(device_id, resolved)
                edits.append(Edit(value.start_byte, value.end_byte, f'"{topic}"'.encode()))
        if device is not None and USERNAME not in known:
            user = (
                f'#define {USERNAME} "{options.hub}/" {device.name} '
                f'"/?api-version={IOTHUB_API_VERSION}"\n'
            )
            at = _after_guard(source, device)
            edits.append(Edit(at, at, user.encode()))
        return edits

    def _source_edits(self, source: bytes, tree: Tree, options: PatchOptions) -> list[Edit]:
        edits = _server_root_ca_edits(tree)
        for define in defines(tree):
            if "KEEP_ALIVE" in define.name.upper():
                edits += _keep_alive_edits(define)
        statements = _statements(tree)
        users = [(node, match) for node, match in statements if match.group(3) == "pUserName"]
        if users and not any(_is_metrics(match.group(4)) for _, match in users):
            value = ", ".join(match.group(4) for _, match in users)
            raise PatchRefusedError(
                f"the program sends its own MQTT user name ({value}, username/password or a "
                "custom authorizer): IoT Hub's is {hub}/{device id}/?api-version=... with the "
                "certificate or a SAS token: set it by hand"
            )
        for node, match in statements:
            if match.group(3) != "pClientIdentifier":
                continue
            target, arrow, client_id = match.group(1), match.group(2), match.group(4)
            if users:
                edits += _metrics_user_edits(statements)
            else:
                line_start = source.rfind(b"\n", 0, node.start_byte) + 1
                indent = source[line_start : node.start_byte].decode()
                comment = "IoT Hub's MQTT user name: {hub}/{device id}/?api-version=..."
                insert = (
                    f"\n{indent}/* {comment} */"
                    f"\n{indent}{target}{arrow}pUserName = {USERNAME};"
                    f"\n{indent}{target}{arrow}userNameLength = {_USERNAME_LENGTH};"
                )
                end = source.find(b"\n", node.end_byte)
                end = len(source) if end < 0 else end
                edits.append(Edit(end, end, insert.encode()))
            edits += _local_username(source, tree, client_id, options)
        return edits


# AWS's demos send "?SDK=FreeRTOS&Version=...&Platform=...&MQTTLib=..." as the user name
# (METRICS_STRING, AWS_IOT_METRICS_STRING): usage metrics for AWS, refused by IoT Hub.
# CLIENT_USERNAME_WITH_METRICS, a user name of the program's own plus the metrics, is its
# username/password branch (a custom authorizer), left to a human.
_METRICS = re.compile(r"\A\(?\s*\w*METRICS_STRING\w*\s*\)?\Z")


def _is_metrics(value: str) -> bool:
    return bool(_METRICS.match(value)) and "USERNAME" not in value


_USERNAME_LENGTH = f"( uint16_t ) ( sizeof( {USERNAME} ) - 1 )"
_ASSIGNMENT = re.compile(
    r"(\w+)\s*(\.|->)\s*(pClientIdentifier|pUserName|userNameLength)\s*=\s*([^;]*?)\s*;\s*\Z"
)


def _statements(tree: Tree) -> list[tuple[Node, re.Match[str]]]:
    """`x.pClientIdentifier = ...;`, `x.pUserName = ...;` and `x.userNameLength = ...;`,
    in source order."""
    found = []
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        stack.extend(reversed(node.children))
        if node.type == "expression_statement":
            match = _ASSIGNMENT.match(node.text.decode() if node.text else "")
            if match is not None:
                found.append((node, match))
    return found


def _metrics_user_edits(statements: list[tuple[Node, re.Match[str]]]) -> list[Edit]:
    """The metrics user name and its length become IoT Hub's user name and its length."""
    edits = []
    metrics = False
    for node, match in statements:
        name, value = match.group(3), match.group(4)
        if name == "pUserName":
            metrics = _is_metrics(value)
            new = USERNAME
        elif name == "userNameLength" and metrics:
            new = _USERNAME_LENGTH
        else:
            continue
        if metrics and value != new:
            start = node.start_byte + match.start(4)
            edits.append(Edit(start, start + len(value.encode()), new.encode()))
    return edits


RECIPE = CoreMqttRecipe()
