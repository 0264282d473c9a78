"""ESP-IDF programs on esp-mqtt (`esp_mqtt_client_config_t`) moved to IoT Hub's MQTT.

Stays on esp-mqtt; tree-sitter-c finds the client configuration's designated
initializers and the publish/subscribe calls. The broker URI's AWS endpoint (a literal,
or a CONFIG_ macro whose sdkconfig value the generic recipe rewrites) becomes the hub; a
user name (`{hub}/{client id}/?api-version=...`) joins the client id, in the layout of
the config (ESP-IDF v5 `.credentials.username`, v4 `.username`); the keep-alive is capped
at 1177 s; publish topics become `devices/{id}/messages/events/` with the relay's
awsTopic properties, and subscriptions the desired-properties or C2D topic. Event
handlers that read shadow payloads, the root CA and esp-aws-iot (the AWS IoT Device SDK
for Embedded C) need a human.
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
from bridge.firmware.touch import RULES, touch_points
from firmware_patches._c import (
    ROOTS_NAME,
    SAS_REFUSED,
    Edit,
    apply_edits,
    c_concat,
    error_count,
    events_topic,
    parse_c,
    roots_definition,
    topic_tokens,
)

__all__ = ["RECIPE"]

_MARKER = re.compile(r"esp_mqtt_client|aws_iot_mqtt|IoT_Client_Init")
_AWS_SDK = re.compile(r"aws_iot_mqtt_client|IoT_Client_Init|aws_iot_shadow")
_ENDPOINT = next(rule.pattern for rule in RULES if rule.kind == "endpoint")
_REWRITTEN = {
    "endpoint": "broker URI points at the IoT Hub host",
    "config_key": "broker URI points at the IoT Hub host",
    "client_id": "client id is the device id; IoT Hub's user name is added",
    "certificate": "same certificate and key: register the thumbprint in IoT Hub",
    "keep_alive": "keep-alive capped at 1177 s",
    "topic": "topics become IoT Hub's (events with awsTopic properties, desired, C2D)",
    "root_ca": "the client trusts IoT Hub's roots (DigiCert Global Root G2, Microsoft RSA "
    "Root CA 2017), embedded as IOTHUB_ROOT_CAS",
}
_HUMAN = {
    "shadow": "the handler now receives $iothub/twin/PATCH/properties/desired/?$version=N "
    "with the desired patch itself (no state wrapper): adapt it by hand",
}


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


def _designator(pair: Node) -> str:
    return "".join(_text(c) for c in pair.children if c.type == "field_designator")


class EspMqttRecipe:
    """The c_esp_mqtt recipe."""

    name = "c_esp_mqtt"
    stack = "c_esp_mqtt"

    def detect(self, path: str, text: str) -> bool:
        return path.endswith((".c", ".h")) and bool(_MARKER.search(text))

    def scan(self, path: str, text: str) -> list[TouchPoint]:
        if _AWS_SDK.search(text):
            reason = "esp-aws-iot (AWS IoT Device SDK for Embedded C): port to esp-mqtt by hand"
            return [
                p.model_copy(update={"reason": reason})
                for p in touch_points(path, text, self.stack, {})
            ]
        points = touch_points(path, text, self.stack, _REWRITTEN)
        return [
            p.model_copy(update={"verdict": "needs_human", "reason": _HUMAN[p.kind]})
            if p.kind in _HUMAN
            else p
            for p in points
        ]

    def patch(self, path: str, text: str, options: PatchOptions) -> str | None:
        if options.auth == "sas":
            raise PatchRefusedError(SAS_REFUSED)
        if _AWS_SDK.search(text):
            raise PatchRefusedError("esp-aws-iot: port to esp-mqtt by hand")
        source = text.encode()
        tree = parse_c(source)
        before = error_count(tree)
        device, edits = _config_edits(tree, options.hub)
        edits += _call_edits(tree, device)
        if not edits:
            return None
        new = apply_edits(source, edits)
        if error_count(parse_c(new)) > before:
            raise PatchRefusedError(f"the rewrite of {path} would not parse")
        return new.decode()


def _config_edits(tree: Tree, hub: str) -> tuple[str | None, list[Edit]]:
    device: str | None = None
    edits: list[Edit] = []
    pairs = {_designator(pair): pair for pair in _nodes(tree, "initializer_pair")}
    for designator, pair in pairs.items():
        value = pair.child_by_field_name("value") or pair.children[-1]
        if designator.endswith(("uri", ".host")):
            for literal in _nodes_in(value, "string_literal"):
                content = _text(literal)[1:-1]
                found = _ENDPOINT.search(content)
                if found:
                    new = content[: found.start()] + hub + content[found.end() :]
                    edits.append(Edit(literal.start_byte, literal.end_byte, f'"{new}"'.encode()))
        elif designator.endswith("client_id"):
            device = _text(value)
            username = designator.replace("client_id", "username")
            if username not in pairs:
                user = c_concat(
                    [
                        ("lit", f"{hub}/"),
                        _piece(device),
                        ("lit", f"/?api-version={IOTHUB_API_VERSION}"),
                    ]
                )
                line = f",\n        {username} = {user}"
                edits.append(Edit(pair.end_byte, pair.end_byte, line.encode()))
        elif designator.endswith(_TRUST):
            edits += _trust_edits(tree, designator, value)
        elif _over_keep_alive(designator, value):
            limit = str(IOTHUB_MAX_KEEP_ALIVE).encode()
            edits.append(Edit(value.start_byte, value.end_byte, limit))
    return device, edits


_TRUST = ("verification.certificate", ".cert_pem", "verification.certificate_len", ".cert_len")


def _trust_edits(tree: Tree, designator: str, value: Node) -> list[Edit]:
    """AWS's root CA becomes IoT Hub's roots, defined once after the includes."""
    if designator.endswith("_len"):
        return [Edit(value.start_byte, value.end_byte, f"sizeof({ROOTS_NAME})".encode())]
    edits = [Edit(value.start_byte, value.end_byte, ROOTS_NAME.encode())]
    definition = roots_definition(tree)
    return edits if definition is None else [*edits, definition]


def _over_keep_alive(designator: str, value: Node) -> bool:
    if not designator.endswith("keepalive") or value.type != "number_literal":
        return False
    return int(_text(value).rstrip("UuLl")) > IOTHUB_MAX_KEEP_ALIVE


def _piece(expression: str) -> tuple[str, str]:
    if expression.startswith('"') and expression.endswith('"'):
        return ("lit", expression[1:-1])
    if re.fullmatch(r"[A-Z_][A-Z0-9_]*", expression):
        return ("macro", expression)
    raise PatchRefusedError(f"client id {expression} is computed at run time: by hand")


def _nodes_in(node: Node, kind: str) -> list[Node]:
    found, stack = [], [node]
    while stack:
        current = stack.pop()
        if current.type == kind:
            found.append(current)
        stack.extend(current.children)
    return found


def _call_edits(tree: Tree, device: str | None) -> list[Edit]:
    edits: list[Edit] = []
    for call in _nodes(tree, "call_expression"):
        name = _text(call.child_by_field_name("function"))
        if name not in {"esp_mqtt_client_publish", "esp_mqtt_client_subscribe"}:
            continue
        arguments = call.child_by_field_name("arguments")
        args = arguments.named_children if arguments is not None else []
        if len(args) < 2:
            continue
        topic = args[1]
        spelled = _text(topic)
        if spelled.startswith(('"devices/', '"$iothub/')):
            continue
        if "$aws/" in spelled and name.endswith("publish"):
            continue  # a shadow publish: its payload must be reshaped by hand
        tokens = topic_tokens(spelled)
        if tokens is None or device is None:
            raise PatchRefusedError(f"topic {spelled} is built at run time: map it by hand")
        kind, text = _piece(device)
        if name.endswith("publish"):
            if kind == "lit":
                new = events_topic("IOTHUB_DEVICE_ID", tokens).replace(
                    "IOTHUB_DEVICE_ID", f'"{text}"'
                )
                new = c_concat(topic_tokens(new) or [])
            else:
                new = events_topic(text, tokens)
        elif "$aws/" in spelled and "/shadow/" in spelled:
            new = '"$iothub/twin/PATCH/properties/desired/#"'
        else:
            new = c_concat([("lit", "devices/"), (kind, text), ("lit", "/messages/devicebound/#")])
        edits.append(Edit(topic.start_byte, topic.end_byte, new.encode()))
    return edits


RECIPE = EspMqttRecipe()
