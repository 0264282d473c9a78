"""Zephyr programs on its MQTT client (`struct mqtt_client`) moved to IoT Hub's MQTT.

Stays on Zephyr's client; tree-sitter-c finds the client's fields and the topic macros.
AWS endpoint literals (and `prj.conf` values, through the generic recipe) become the hub;
`user_name` points at IoT Hub's user name built from the client id macro by the
preprocessor; the keep-alive is capped at 1177 s; topic macros used for publishing become
`devices/{id}/messages/events/` with the relay's awsTopic properties, and those used for
subscribing the desired-properties or C2D topic. Shadow publishes (their payload must be
reshaped) and the TLS credentials' root CA need a human.
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
from firmware_patches._c import (
    SAS_REFUSED,
    Edit,
    apply_edits,
    c_concat,
    defines,
    error_count,
    events_topic,
    parse_c,
    string_literal_edits,
    topic_tokens,
)

__all__ = ["RECIPE"]

_MARKER = re.compile(r"zephyr/net/mqtt\.h|\bmqtt_client_init\b")
_ENDPOINT = next(rule.pattern for rule in RULES if rule.kind == "endpoint")
_FIELD = re.compile(r"^\s*(\w+)\s*(\.|->)\s*(client_id\.utf8|user_name|keepalive)\s*=\s*(.+?);")
_TOPIC_USE = re.compile(r"\(\s*uint8_t\s*\*\s*\)\s*([A-Z_][A-Z0-9_]*)")
USER = "iothub_user_name"
_REWRITTEN = {
    "endpoint": "endpoint literal is the IoT Hub host",
    "config_key": "endpoint literal is the IoT Hub host",
    "client_id": "client id is the device id; user_name is IoT Hub's user name",
    "keep_alive": "keep-alive capped at 1177 s",
    "topic": "topic macros become IoT Hub's (events with awsTopic properties, desired, C2D)",
}
# Zephyr's TLS credentials: the CA registered for the broker (AWS's, from creds/ca.c).
_RULES = (
    Rule(
        "root_ca",
        re.compile(r"\bTLS_CREDENTIAL_CA_CERTIFICATE\b"),
        "register IoT Hub's roots as TLS credentials",
    ),
    Rule(
        "client_id",
        re.compile(r"\bclient_id\.utf8\s*="),
        "client id: must equal the IoT Hub device id",
    ),
    *RULES,
)
# A publish whose topic is no macro of this file (a function argument, a Kconfig value
# such as the aws_iot_mqtt sample's CONFIG_AWS_PUBLISH_TOPIC): nothing here to rewrite.
_UNMAPPED_TOPIC = (
    "the topic is no macro of this file (a function argument or a Kconfig value): point "
    "it at devices/{id}/messages/events/ with the awsTopic properties by hand"
)
# `static const char mqtt_client_name[] = CONFIG_AWS_THING_NAME;` (Zephyr's aws_iot_mqtt
# sample): the client id is that array, spelled by a macro or a literal.
_ID_ARRAY = r"\bconst\s+char\s+{}\s*\[\s*\]\s*=\s*([A-Z_][A-Z0-9_]*|\"[^\"\n]*\")\s*;"
_HUMAN = {
    "shadow": "shadow publishes and callbacks need the payload reshaped: by hand",
    "root_ca": "register IoT Hub's roots (DigiCert Global Root G2, Microsoft RSA Root CA "
    "2017) as TLS credentials",
}


def _text(node: Node | None) -> str:
    return node.text.decode() if node is not None and node.text else ""


def _statements(tree: Tree) -> list[Node]:
    found, stack = [], [tree.root_node]
    while stack:
        node = stack.pop()
        if node.type == "expression_statement":
            found.append(node)
        stack.extend(reversed(node.children))
    return found


class ZephyrMqttRecipe:
    """The c_zephyr_mqtt recipe."""

    name = "c_zephyr_mqtt"
    stack = "c_zephyr_mqtt"

    def detect(self, path: str, text: str) -> bool:
        return path.endswith((".c", ".h")) and bool(_MARKER.search(text))

    def scan(self, path: str, text: str) -> list[TouchPoint]:
        points = touch_points(path, text, self.stack, _REWRITTEN, rules=_RULES)
        # Lines that use a shadow topic macro stay as they are: a human reshapes them.
        shadow_macros = re.findall(r"#define\s+(\w+)\s+\"\$aws/[^\n]*shadow", text)
        ids = set(re.findall(r"client_id\.utf8\s*=\s*\(\s*uint8_t\s*\*\s*\)\s*(\w+)", text))
        topics = set(_TOPIC_USE.findall(text)) - ids - set(shadow_macros) - {"IOTHUB_USER"}
        lines = text.splitlines()
        out = []
        for p in points:
            uses_shadow = any(re.search(rf"\b{m}\b", lines[p.line - 1]) for m in shadow_macros)
            only_shadow = p.kind == "topic" and not topics
            if p.kind in _HUMAN or uses_shadow or only_shadow:
                reason = _HUMAN.get(p.kind, _HUMAN["shadow"])
                if only_shadow and not uses_shadow and not shadow_macros:
                    reason = _UNMAPPED_TOPIC
                p = p.model_copy(update={"verdict": "needs_human", "reason": reason})  # noqa: PLW2901
            out.append(p)
        return out

    def patch(self, path: str, text: str, options: PatchOptions) -> str | None:
        if options.auth == "sas":
            raise PatchRefusedError(SAS_REFUSED)
        source = text.encode()
        tree = parse_c(source)
        before = error_count(tree)
        edits = string_literal_edits(tree, _ENDPOINT, options.hub)
        device, field_edits = _field_edits(source, tree)
        edits += field_edits
        if device is not None:
            edits += _define_edits(source, tree, device, options.hub)
        if not edits:
            return None
        new = apply_edits(source, edits)
        if error_count(parse_c(new)) > before:
            raise PatchRefusedError(f"the rewrite of {path} would not parse")
        return new.decode()


def _field_edits(source: bytes, tree: Tree) -> tuple[str | None, list[Edit]]:
    device: str | None = None
    edits: list[Edit] = []
    user_set = False
    anchor: Node | None = None
    for statement in _statements(tree):
        match = _FIELD.match(_text(statement))
        if match is None:
            continue
        _, _, field, value = match.groups()
        if field == "client_id.utf8":
            device = re.sub(r"^\(\s*uint8_t\s*\*\s*\)\s*", "", value).strip()
            array = re.search(_ID_ARRAY.format(re.escape(device)), source.decode())
            device = array.group(1) if array is not None else device
            anchor = statement
        elif field == "user_name":
            user_set = True
            if value.strip() != f"&{USER}":
                start = statement.start_byte + _text(statement).index(value)
                edits.append(Edit(start, start + len(value), f"&{USER}".encode()))
        elif field == "keepalive" and _over_keep_alive(value):
            start = statement.start_byte + _text(statement).index(value)
            limit = str(IOTHUB_MAX_KEEP_ALIVE).encode()
            edits.append(Edit(start, start + len(value), limit))
    if anchor is not None and not user_set:
        match = _FIELD.match(_text(anchor))
        assert match is not None
        line_start = source.rfind(b"\n", 0, anchor.start_byte) + 1
        indent = source[line_start : anchor.start_byte].decode()
        line = f"\n{indent}{match.group(1)}{match.group(2)}user_name = &{USER};"
        edits.append(Edit(anchor.end_byte, anchor.end_byte, line.encode()))
    return device, edits


def _over_keep_alive(value: str) -> bool:
    number = value.strip().rstrip("UuLl")
    return number.isdigit() and int(number) > IOTHUB_MAX_KEEP_ALIVE


def _define_edits(source: bytes, tree: Tree, device: str, hub: str) -> list[Edit]:
    edits: list[Edit] = []
    found = {d.name: d for d in defines(tree)}
    if not re.fullmatch(r"[A-Z_][A-Z0-9_]*|\"[^\"]*\"", device):
        raise PatchRefusedError(f"client id {device} is computed at run time: by hand")
    piece = ("lit", device[1:-1]) if device.startswith('"') else ("macro", device)
    if "IOTHUB_USER" not in found:
        user = c_concat([("lit", f"{hub}/"), piece, ("lit", f"/?api-version={IOTHUB_API_VERSION}")])
        block = (
            "\n/* IoT Hub's MQTT user name; no password: the certificate authenticates. */\n"
            f"#define IOTHUB_USER {user}\n"
            f"static struct mqtt_utf8 {USER} = {{\n"
            "\t.utf8 = (uint8_t *)IOTHUB_USER, .size = sizeof(IOTHUB_USER) - 1};\n"
        )
        top = [n for n in tree.root_node.children if n.type.startswith("preproc")]
        at = top[-1].end_byte if top else 0
        edits.append(Edit(at, at, block.encode()))
    text = source.decode()
    for name in dict.fromkeys(_TOPIC_USE.findall(text)):
        define = found.get(name)
        if define is None or define.value_node is None or name in {device, "IOTHUB_USER"}:
            continue
        spelled = define.value
        if spelled.startswith(('"devices/', '"$iothub/')):
            continue
        publish = re.search(
            rf"message\.topic\.topic\.utf8\s*=\s*\(\s*uint8_t\s*\*\s*\)\s*{name}\b", text
        )
        if publish and "$aws/" in spelled:
            continue  # a shadow publish: its payload must be reshaped by hand
        tokens = topic_tokens(spelled)
        if tokens is None:
            raise PatchRefusedError(f"topic {name} is built at run time: map it by hand")
        kind, value = piece
        if publish:
            new = events_topic(value, tokens) if kind == "macro" else _literal_events(value, tokens)
        elif "$aws/" in spelled and "/shadow/" in spelled:
            new = '"$iothub/twin/PATCH/properties/desired/#"'
        else:
            new = c_concat([("lit", "devices/"), piece, ("lit", "/messages/devicebound/#")])
        node = define.value_node
        edits.append(Edit(node.start_byte, node.end_byte, new.encode()))
    return edits


def _literal_events(device: str, tokens: list[tuple[str, str]]) -> str:
    spliced = events_topic("IOTHUB_DEVICE_ID", tokens).replace("IOTHUB_DEVICE_ID", f'"{device}"')
    return c_concat(topic_tokens(spliced) or [])


RECIPE = ZephyrMqttRecipe()
