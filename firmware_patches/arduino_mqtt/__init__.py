"""Arduino sketches on PubSubClient, 256dpi's MQTTClient or ArduinoMqttClient talking to
AWS IoT, moved to IoT Hub's MQTT.

Stays on the sketch's library; tree-sitter-cpp finds what to change. AWS endpoint string literals
become the hub host; `connect(ID)` gains IoT Hub's user name (built at compile time from
the client id macro) and no password, since the device authenticates with its
certificate; keep-alives are capped at 1177 s; publish topic defines and literals become
`devices/{id}/messages/events/` with the relay's awsTopic properties (thing-name macros
are spliced in by the preprocessor); subscriptions become the desired-properties or C2D
topic; the buffer grows for IoT Hub's longer topics. Callbacks that read shadow payloads,
and the root CA (IoT Hub's roots must be embedded) need a human. ArduinoMqttClient gets
`setUsernamePassword(IOTHUB_USER, "")` after `setId`, its keep-alive (milliseconds) capped,
and `beginMessage`/`subscribe` topics rewritten the same way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

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
    events_topic,
    includes_end,
    parse_cpp,
    roots_definition,
    string_literal_edits,
    topic_tokens,
)

__all__ = ["RECIPE"]

_MARKER = re.compile(r"PubSubClient|MQTTClient|ArduinoMqttClient")
_ARDUINO_MQTT_CLIENT = re.compile(r"#include\s*[<\"]ArduinoMqttClient\.h")
# PubSubClient and 256dpi's arduino-mqtt (class MQTTClient) share the calls rewritten here.
_CLIENT_TYPES = frozenset({"PubSubClient", "MQTTClient"})
_ENDPOINT = next(rule.pattern for rule in RULES if rule.kind == "endpoint")
_MACRO = re.compile(r"[A-Z][A-Z0-9_]*")
_CONFIG_KEY = next(rule.pattern for rule in RULES if rule.kind == "config_key")
_TOPIC_ARGUMENT = re.compile(r"\.(?:publish|subscribe)\(\s*([A-Za-z_]\w*)\s*[,)]")
BUFFER = 1024
_ARGUMENT_LISTS = frozenset({"argument_list", "parameter_list"})
# A client id: ("macro", NAME) spliced by the preprocessor, or ("lit", TEXT).
Device = tuple[str, str]
_REWRITTEN = {
    "endpoint": "endpoint literal is the IoT Hub host",
    "config_key": "endpoint literal is the IoT Hub host",
    "client_id": "client id is the device id; connect() sends IoT Hub's user name",
    "certificate": "same certificate and key: X.509 thumbprint authentication",
    "keep_alive": "keep-alive capped at 1177 s",
    "topic": "topics become IoT Hub's (events with awsTopic properties, desired, C2D)",
    "root_ca": "the sketch trusts IoT Hub's roots (DigiCert Global Root G2, Microsoft RSA "
    "Root CA 2017), defined as IOTHUB_ROOT_CAS",
}
_HUMAN = {
    "shadow": "the callback now receives $iothub/twin/PATCH/properties/desired/?$version=N "
    "with the desired patch itself (no state wrapper): adapt it by hand",
}
# ArduinoBearSSL's BearSSLClient checks the server against br_x509_trust_anchor structs
# (DN, RSA modulus and exponent), not a PEM: by default the library's own 16 roots in
# BearSSLTrustAnchors.h, chosen in 2018 (Amazon Root CA 1, Baltimore CyberTrust, DigiCert
# Global Root CA among them), or the table the sketch passes. No PEM to swap: the patch
# cannot vouch that the table holds IoT Hub's roots, so a human builds one that does.
_BEARSSL_CLIENT = re.compile(r"\bBearSSLClient\s+\w+\s*[({]|\bnew\s+BearSSLClient\s*\(")
BEARSSL_REASON = (
    "ArduinoBearSSL verifies the server against br_x509_trust_anchor entries (by default "
    "the library's 2018 table in BearSSLTrustAnchors.h), not a PEM, and the patch cannot "
    "vouch that they hold IoT Hub's roots: "
    "generate entries for DigiCert Global Root G2 and Microsoft RSA Root CA 2017 with "
    "BearSSL's `brssl ta DigiCertGlobalRootG2.crt.pem MicrosoftRSARootCA2017.crt.pem` and "
    "construct the client as BearSSLClient(client, TAs, TAs_NUM) with them; until then "
    "the TLS handshake with IoT Hub may fail"
)


def error_count(tree: Tree) -> int:
    count, stack = 0, [tree.root_node]
    while stack:
        node = stack.pop()
        count += node.type == "ERROR" or node.is_missing
        stack.extend(node.children)
    return count


def _text(node: Node | None) -> str:
    return node.text.decode() if node is not None and node.text else ""


def _nodes(tree: Tree, *kinds: str) -> list[Node]:
    found, stack = [], [tree.root_node]
    while stack:
        node = stack.pop()
        if node.type in kinds:
            found.append(node)
        stack.extend(reversed(node.children))
    return found


class ArduinoRecipe:
    """The arduino_mqtt recipe: PubSubClient rewritten, other MQTT libraries reported."""

    name = "arduino_mqtt"
    stack = "arduino_mqtt"

    def detect(self, path: str, text: str) -> bool:
        return path.endswith((".ino", ".cpp", ".h", ".hpp")) and bool(_MARKER.search(text))

    def scan(self, path: str, text: str) -> list[TouchPoint]:
        human = dict(_HUMAN)
        lines = text.splitlines()
        # A commented-out call (`// mqttClient.setId("clientId");`) is no touch point.
        points = [
            point
            for point in _topic_macros(text, touch_points(path, text, self.stack, _REWRITTEN))
            if not lines[point.line - 1].lstrip().startswith("//")
        ]
        points += [
            TouchPoint(
                file=path,
                line=number,
                kind="root_ca",
                stack=self.stack,
                verdict="needs_human",
                reason=BEARSSL_REASON,
            )
            for number, line in enumerate(lines, start=1)
            if _BEARSSL_CLIENT.search(line.split("//", 1)[0])
        ]
        shadow_publishes = _shadow_publish_lines(text)
        return [
            p.model_copy(update={"verdict": "needs_human", "reason": SHADOW_PUBLISH})
            if p.kind in {"topic", "shadow"} and p.line in shadow_publishes
            else p.model_copy(update={"verdict": "needs_human", "reason": human[p.kind]})
            if p.kind in human
            else p
            for p in sorted(points, key=lambda point: point.line)
        ]

    def patch(self, path: str, text: str, options: PatchOptions) -> str | None:
        if options.auth == "sas":
            raise PatchRefusedError(SAS_REFUSED)
        source = text.encode()
        tree = parse_cpp(source)
        before = error_count(tree)
        edits = _endpoint_edits(tree, options.hub) + _trust_edits(tree)
        if _ARDUINO_MQTT_CLIENT.search(text) or any(
            _ARDUINO_MQTT_CLIENT.search(other) for other in options.unit
        ):
            # A tab may use the client another tab of the sketch declares and names.
            edits += _mqtt_client_edits(source, tree, options)
        else:
            # The IDE concatenates a sketch folder's .ino files: the client, its id and
            # the topic defines may each live in a different one.
            unit = [parse_cpp(other.encode()) for other in options.unit]
            clients = _clients(tree).union(*(_clients(other) for other in unit))
            if clients:
                edits += _client_edits(source, tree, clients, options, unit)
        if not edits:
            return None
        new = apply_edits(source, edits)
        if error_count(parse_cpp(new)) > before:
            raise PatchRefusedError(f"the rewrite of {path} would not parse")
        return new.decode()


SHADOW_PUBLISH = (
    "publishes an AWS shadow document, left as it is: IoT Hub takes reported properties on "
    "$iothub/twin/PATCH/properties/reported/?$rid=N with the bare reported object (no "
    "state/reported wrapper) and closes the connection of a device publishing to $aws/...; "
    "rewrite the topic and the document by hand"
)
_PUBLISH_LITERAL = re.compile(r'\.publish\(\s*"\$aws/')
_PUBLISH_NAME = re.compile(r"\.publish\(\s*([A-Za-z_]\w*)\s*,")


def _shadow_publish_lines(text: str) -> set[int]:
    """Lines publishing to a topic the sketch defines (a `#define` or string constant)
    as an AWS shadow topic: the rewrite leaves those publishes alone."""
    lines = text.splitlines()
    names = {match.group(1) for line in lines for match in _PUBLISH_NAME.finditer(line)}
    shadow = set()
    for name in names:
        definition = re.compile(
            rf"#\s*define\s+{name}\s+(.*)|\b{name}\s*(?:\[\s*\])?\s*(?:PROGMEM\s*)?=\s*([^;]*)"
        )
        for line in lines:
            found = definition.search(line.split("//", 1)[0])
            if found is not None and "$aws/" in (found.group(1) or found.group(2) or ""):
                shadow.add(name)
    named = {
        number
        for number, line in enumerate(lines, start=1)
        for match in _PUBLISH_NAME.finditer(line)
        if match.group(1) in shadow
    }
    # `publish("$aws/things/" THINGNAME "/shadow/update", buf)`: the literal in the call.
    spelled = {
        number
        for number, line in enumerate(lines, start=1)
        if _PUBLISH_LITERAL.search(line.split("//", 1)[0])
    }
    return named | spelled


def _topic_macros(text: str, points: list[TouchPoint]) -> list[TouchPoint]:
    """`AWS_IOT_PUBLISH_TOPIC` matches the endpoint-setting rule, but a macro the sketch
    publishes or subscribes to is a topic: its define is reported as one, and a line
    using it is reported once, as the topic it already is."""
    topics = set(_TOPIC_ARGUMENT.findall(text))
    lines = text.splitlines()
    kinds = {(point.line, point.kind) for point in points}
    out = []
    for point in points:
        line = lines[point.line - 1] if point.kind == "config_key" else ""
        names = {match.group() for match in _CONFIG_KEY.finditer(line)}
        if not names or not names <= topics:
            out.append(point)
        elif (point.line, "topic") not in kinds:
            out.append(point.model_copy(update={"kind": "topic", "reason": _REWRITTEN["topic"]}))
    return out


def _trust_edits(tree: Tree) -> list[Edit]:
    """`setCACert(X)` and the X509List given to `setTrustAnchors` trust IoT Hub's roots
    instead of AWS's; IOTHUB_ROOT_CAS is defined after the includes. The list may be
    declared (`X509List cert(cacert);`), assigned (`ca = new X509List(caFile);`) or built
    in the call (`setTrustAnchors(new X509List(ca_der, ca_der_len))`), from a PEM, a DER
    array and its length, or a file: its arguments become the PEM of IoT Hub's roots."""
    edits: list[Edit] = []
    anchors: set[str] = set()
    roots = f"({ROOTS_NAME})".encode()
    for call in _nodes(tree, "call_expression"):
        function = call.child_by_field_name("function")
        field = function.child_by_field_name("field") if function is not None else None
        args = _args(call)
        if field is None or len(args) != 1:
            continue
        if _text(field) == "setCACert":
            edits.append(Edit(args[0].start_byte, args[0].end_byte, ROOTS_NAME.encode()))
        elif _text(field) == "setTrustAnchors" and args[0].type == "new_expression":
            built = args[0].child_by_field_name("arguments")
            if built is not None:
                edits.append(Edit(built.start_byte, built.end_byte, roots))
        elif _text(field) == "setTrustAnchors":
            anchors.add(_text(args[0]).lstrip("&").strip())
    edits += _anchor_edits(tree, anchors, roots)
    if edits:
        definition = roots_definition(tree)
        if definition is not None:
            edits.append(definition)
    source = tree.root_node.text or b""
    return [edit for edit in edits if edit.text != source[edit.start : edit.end]]


def _anchor_edits(tree: Tree, anchors: set[str], roots: bytes) -> list[Edit]:
    """The arguments the trust-anchor lists named `anchors` are built with."""
    edits: list[Edit] = []
    # `X509List trust(AMAZON_ROOT_CA1);` parses as an init_declarator, or (a macro
    # argument looking like a type) as a function_declarator: its arguments either way.
    for declarator in _nodes(tree, "init_declarator", "function_declarator"):
        value = declarator.child_by_field_name("value") or declarator.child_by_field_name(
            "parameters"
        )
        name = _text(declarator.child_by_field_name("declarator"))
        if name in anchors and value is not None and value.type in _ARGUMENT_LISTS:
            edits.append(Edit(value.start_byte, value.end_byte, roots))
    for assignment in _nodes(tree, "assignment_expression"):
        right = assignment.child_by_field_name("right")
        built = right.child_by_field_name("arguments") if right is not None else None
        named = _text(assignment.child_by_field_name("left")) in anchors
        if named and right is not None and right.type == "new_expression" and built is not None:
            edits.append(Edit(built.start_byte, built.end_byte, roots))
    return edits


def _endpoint_edits(tree: Tree, hub: str) -> list[Edit]:
    return string_literal_edits(tree, _ENDPOINT, hub)


def _clients(tree: Tree) -> set[str]:
    names = set()
    # A class may hold the client as a member (`MQTTClient client = MQTTClient(512);`).
    for declaration in _nodes(tree, "declaration", "field_declaration"):
        if _text(declaration.child_by_field_name("type")) in _CLIENT_TYPES:
            for declarator in declaration.children_by_field_name("declarator"):
                inner = declarator.child_by_field_name("declarator") or declarator
                names.add(_text(inner).split("(")[0].strip())
    return names


def _defines(tree: Tree) -> dict[str, Node]:
    found = {}
    for define in _nodes(tree, "preproc_def"):
        value = define.child_by_field_name("value")
        if value is not None:
            found[_text(define.child_by_field_name("name"))] = value
    return found


def _string_constants(tree: Tree) -> dict[str, Node]:
    """`const char NAME[] = "...";`, `const char *NAME = "...";`, `String NAME = "...";`
    (how most community sketches spell their thing name and topics): each name, with its
    string literal. A name declared twice is left out: which one a call sees is scoping."""
    found: dict[str, Node] = {}
    seen: set[str] = set()
    for declaration in _nodes(tree, "declaration"):
        if _text(declaration.child_by_field_name("type")) not in {"char", "String"}:
            continue
        for declarator in declaration.children_by_field_name("declarator"):
            value = declarator.child_by_field_name("value")
            inner = declarator.child_by_field_name("declarator")
            while inner is not None and inner.type in {"pointer_declarator", "array_declarator"}:
                inner = inner.child_by_field_name("declarator")
            name = _text(inner)
            if name == "PROGMEM":
                # `static const char NAME[] PROGMEM = "..."`: the grammar takes PROGMEM
                # for the declarator and leaves `NAME[]` in an ERROR node before it.
                errors = [c for c in declaration.children if c.type == "ERROR"]
                arrays = [n for e in errors for n in e.named_children]
                inner = arrays[0].child_by_field_name("declarator") if arrays else None
                name = _text(inner) if inner is not None and inner.type == "identifier" else ""
            if not name or inner is None or inner.type != "identifier":
                continue
            if name in seen:
                found.pop(name, None)
                continue
            seen.add(name)
            # A literal, or literals and macros: `"$aws/things/" THINGNAME "/shadow/update"`.
            kinds = {"string_literal", "concatenated_string"}
            if value is not None and value.type in kinds and "\\" not in _text(value):
                found[name] = value
    return found


def _declared(tree: Tree) -> set[str]:
    """Every name the file declares as a variable or parameter."""
    names = set()
    for node in _nodes(tree, "init_declarator", "parameter_declaration", "declaration"):
        inner = node.child_by_field_name("declarator")
        while inner is not None and inner.type not in {"identifier", "field_identifier"}:
            inner = inner.child_by_field_name("declarator")
        if inner is not None:
            names.add(_text(inner))
    return names


def _args(call: Node) -> list[Node]:
    arguments = call.child_by_field_name("arguments")
    return arguments.named_children if arguments is not None else []


def _calls(tree: Tree, clients: set[str]) -> dict[str, list[Node]]:
    """The PubSubClient method calls, by method name."""
    calls: dict[str, list[Node]] = {}
    for call in _nodes(tree, "call_expression"):
        function = call.child_by_field_name("function")
        if function is None or function.type != "field_expression":
            continue
        if _text(function.child_by_field_name("argument")) in clients:
            method = _text(function.child_by_field_name("field"))
            calls.setdefault(method, []).append(call)
    return calls


@dataclass(frozen=True)
class _Names:
    """What the sketch's files name: defines and string constants, this file's and the
    other tabs' (`unit_*`), and every name declared as a variable or parameter."""

    defines: dict[str, Node]
    constants: dict[str, Node]
    unit_defines: set[str]
    unit_constants: dict[str, Node]
    declared: set[str]
    # Names a local header (`secrets.h`, `include/config.h`) defines, with the C text of
    # their value: `"esp32/pub"`, or `"$aws/things/" THINGNAME "/shadow/update"`.
    headers: dict[str, str]

    def device(self, argument: Node) -> Device | None:
        """The client id connect() is given: a macro spliced by the preprocessor, or the
        literal text of a string literal or of a string constant of the sketch (`const
        char THINGNAME[] = "..."` cannot be spliced into a literal)."""
        spelled = _text(argument)
        if argument.type == "string_literal" and "\\" not in spelled:
            return ("lit", spelled[1:-1])
        if argument.type != "identifier":
            return None
        constant = self.constants.get(spelled, self.unit_constants.get(spelled))
        if constant is not None:
            return ("lit", _text(constant)[1:-1]) if constant.type == "string_literal" else None
        header = self.headers.get(spelled)
        if header is not None and not header.startswith("#"):
            # `const char THINGNAME[] = "x";` in secrets.h: its text, not the name.
            tokens = topic_tokens(header)
            literal = tokens is not None and len(tokens) == 1 and tokens[0][0] == "lit"
            return ("lit", tokens[0][1]) if literal and tokens is not None else None
        if _MACRO.fullmatch(spelled) and spelled not in self.declared:
            return ("macro", spelled)
        return None

    def topic_node(self, topic: Node, *, own: bool) -> Node | None:
        """What to edit for a publish/subscribe topic argument: the define or string
        constant it names, or the argument itself; None when another file edits it."""
        spelled = _text(topic)
        named = topic.type == "identifier"
        if named and spelled in self.defines:
            return self.defines[spelled]
        if named and spelled in self.constants:
            return self.constants[spelled]
        if not own or (named and spelled in self.unit_defines | set(self.unit_constants)):
            return None
        if named and spelled in self.declared:
            raise PatchRefusedError(
                f"topic {spelled} is a variable set at run time: map it by hand"
            )
        return topic


def _header_names(headers: tuple[str, ...]) -> dict[str, str]:
    """Each name a header defines, with its value's text; a define's prefixed with "#"
    (a macro may be spliced by the preprocessor, a constant may not)."""
    found: dict[str, str] = {}
    for text in headers:
        tree = parse_cpp(text.encode())
        for name, value in _string_constants(tree).items():
            found.setdefault(name, _text(value))
        for name, node in _defines(tree).items():
            found.setdefault(name, "#" + _text(node).strip())
    return found


def _names(tree: Tree, unit: list[Tree], headers: tuple[str, ...] = ()) -> _Names:
    defines = _defines(tree)
    constants = {k: v for k, v in _string_constants(tree).items() if k not in defines}
    unit_defines = {name for other in unit for name in _defines(other)} - set(defines)
    unit_constants = {
        name: value
        for other in unit
        for name, value in _string_constants(other).items()
        if name not in constants and name not in defines
    }
    declared = _declared(tree).union(*map(_declared, unit))
    known = set(defines) | set(constants) | unit_defines | set(unit_constants)
    header = {k: v for k, v in _header_names(headers).items() if k not in known}
    return _Names(defines, constants, unit_defines, unit_constants, declared, header)


def _client_edits(
    source: bytes, tree: Tree, clients: set[str], options: PatchOptions, unit: list[Tree]
) -> list[Edit]:
    calls = _calls(tree, clients)
    unit_calls = [_calls(other, clients) for other in unit]
    names = _names(tree, unit, options.headers)
    given = options.device_id.value if options.device_id.mode == "literal" else None
    device, edits = _connect_edits(tree, calls, names, options.hub, given)
    if device is None:
        device = next(filter(None, (_connect_id(other, names) for other in unit_calls)), None)
    for call in calls.get("setKeepAlive", []):
        args = _args(call)
        number = args[0] if args and args[0].type == "number_literal" else None
        if number is not None and int(_text(number).rstrip("UuLl")) > IOTHUB_MAX_KEEP_ALIVE:
            limit = str(IOTHUB_MAX_KEEP_ALIVE).encode()
            edits.append(Edit(number.start_byte, number.end_byte, limit))
    topic_edits = _topic_edits(calls, names, device, unit_calls, includes_end(tree))
    if topic_edits and "setBufferSize" not in calls:
        edits += _buffer_edits(source, calls) + _mqttclient_buffer_edits(tree)
    elif topic_edits:
        # `setBufferSize(256)`: sized for AWS's topics, too small for IoT Hub's.
        for call in calls["setBufferSize"]:
            size = next(iter(_args(call)), None)
            small = size is not None and size.type == "number_literal"
            if small and size is not None and int(_text(size).rstrip("UuLl"), 0) < BUFFER:
                edits.append(Edit(size.start_byte, size.end_byte, str(BUFFER).encode()))
    return edits + topic_edits


def _connect_edits(
    tree: Tree, calls: dict[str, list[Node]], names: _Names, hub: str, given: str | None
) -> tuple[Device | None, list[Edit]]:
    """connect(ID) gains IoT Hub's user name. `given` (`--device-id-from literal:ID`)
    replaces an id built at run time (`"ESP8266Client-" + String(random(0xffff), HEX)`,
    as PubSubClient's own examples do), which IoT Hub cannot know."""
    device = None
    edits: list[Edit] = []
    for call in calls.get("connect", []):
        args = _args(call)
        found = names.device(args[0]) if args else None
        if given is not None and args:
            found = ("lit", given)
            quoted = '"' + given.replace("\\", "\\\\").replace('"', '\\"') + '"'
            if _text(args[0]) != quoted:
                edits.append(Edit(args[0].start_byte, args[0].end_byte, quoted.encode()))
        if found is None or (device is not None and found != device):
            raise PatchRefusedError(
                "connect() without a client id macro, string literal or string constant "
                "(an id built at run time, such as a random one, cannot be the device id): "
                "pass --device-id-from literal:ID, or build the user name by hand"
            )
        device = found
        if len(args) == 1:
            edits.append(Edit(args[0].end_byte, args[0].end_byte, b", IOTHUB_USER, NULL"))
        elif _text(args[1]) != "IOTHUB_USER":
            raise PatchRefusedError(
                f"connect() sends a user name of the program's own ({_text(args[1])}): IoT Hub "
                "takes its user name {hub}/{device id}/?api-version=2021-04-12 and, with "
                "X.509, no password; set them by hand (a custom authorizer's credentials "
                "have no IoT Hub equivalent)"
            )
    if device is not None and "IOTHUB_USER" not in set(names.defines) | names.unit_defines:
        # A define, not an argument: C++ parses "a" MACRO "b" only once preprocessed.
        at = includes_end(tree)
        spelled = c_concat(
            [("lit", f"{hub}/"), device, ("lit", f"/?api-version={IOTHUB_API_VERSION}")]
        )
        user = (
            "// IoT Hub's MQTT user name; no password: the certificate authenticates.\n"
            f"#define IOTHUB_USER {spelled}\n"
        )
        edits.append(Edit(at, at, user.encode()))
    return device, edits


def _connect_id(calls: dict[str, list[Node]], names: _Names) -> Device | None:
    """The client id another file of the sketch passes to connect()."""
    for call in calls.get("connect", []):
        args = _args(call)
        found = names.device(args[0]) if args else None
        if found is not None:
            return found
    return None


def _topic_edits(
    calls: dict[str, list[Node]],
    names: _Names,
    device: Device | None,
    unit_calls: list[dict[str, list[Node]]],
    at: int,
) -> list[Edit]:
    """Edits of this file's topics: literals in its own calls, and its `#define`s and
    string constants that a call here or in another file of the sketch (`unit_calls`)
    uses as a topic. One made in another file is left to that file's patch."""
    edits: list[Edit] = []
    done: set[int] = set()
    hoisted: list[str] = []
    uses = [(calls, True)] + [(other, False) for other in unit_calls]
    for method in ("publish", "subscribe"):
        for found, own in uses:
            for call in found.get(method, []):
                args = _args(call)
                node = names.topic_node(args[0], own=own) if args else None
                if node is None or node.start_byte in done:
                    continue  # another file's define or literal: its own patch edits it
                topic = args[0]
                header = names.headers.get(_text(topic)) if node is topic else None
                # A header's topic is mapped by its value and hoisted into this file.
                spelled = _text(node).strip() if header is None else header.removeprefix("#")
                new = _topic(spelled, method, device)
                if new is None:
                    continue
                done.add(node.start_byte)
                if node is topic:
                    new = _hoisted(topic, new, hoisted, known=header is not None)
                edits.append(Edit(node.start_byte, node.end_byte, new.encode()))
    if hoisted:
        block = "// IoT Hub's topics for the sketch's own.\n" + "".join(hoisted)
        edits.append(Edit(at, at, block.encode()))
    return edits


def _hoisted(topic: Node, new: str, hoisted: list[str], *, known: bool) -> str:
    """A call's new topic argument: a literal as it is; one splicing a macro in goes
    through a define (`IOTHUB_EVENTS_<TOPIC>` or `IOTHUB_INBOUND_<TOPIC>`, added to
    `hoisted`), since `"devices/" THINGNAME "/..."` is C++ only once preprocessed and
    the grammar rejects it in a call."""
    if _is_literal(new):
        return new
    if topic.type == "identifier" and not known:
        raise PatchRefusedError(
            f"topic {_text(topic)} is defined in a file the patch cannot read: map it by hand"
        )
    # Named after the topic, so two tabs hoisting the same one define the same macro
    # with the same text (a benign redefinition) and different ones never collide.
    spelled = _text(topic) if topic.type == "identifier" else _text(topic)[1:-1]
    name = re.sub(r"[^A-Z0-9]+", "_", spelled.upper()).strip("_")
    name = f"IOTHUB_{'EVENTS' if '/messages/events/' in new else 'INBOUND'}_{name or 'ROOT'}"
    line = f"#define {name} {new}\n"
    if line not in hoisted:
        hoisted.append(line)
    return name


def _is_literal(spelled: str) -> bool:
    tokens = topic_tokens(spelled)
    return tokens is not None and all(kind == "lit" for kind, _ in tokens)


def _topic(spelled: str, method: str, device: Device | None) -> str | None:
    """IoT Hub's topic for an AWS topic spelled in C, None when it stays as it is."""
    patched = spelled.startswith(('"devices/', '"$iothub/'))
    if patched or ("$aws/" in spelled and method == "publish"):
        return None  # patched before, or a shadow publish a human must reshape
    tokens = topic_tokens(spelled)
    if tokens is None:
        raise PatchRefusedError(f"topic {spelled} is built at run time: map it by hand")
    if device is None:
        raise PatchRefusedError(
            f"no connect(CLIENT_ID) in the sketch, so the device id in topic {spelled} "
            "is unknown: map it by hand"
        )
    if method == "publish":
        kind, value = device
        if kind == "macro":
            return events_topic(value, tokens)
        spliced = events_topic("IOTHUB_DEVICE_ID", tokens).replace("IOTHUB_DEVICE_ID", f'"{value}"')
        return c_concat(topic_tokens(spliced) or [])
    if "$aws/" in spelled and "/shadow/" in spelled:
        return '"$iothub/twin/PATCH/properties/desired/#"'
    return c_concat([("lit", "devices/"), device, ("lit", "/messages/devicebound/#")])


def _mqttclient_buffer_edits(tree: Tree) -> list[Edit]:
    """256dpi's MQTTClient takes its buffer size in the constructor (default 128)."""
    edits = []
    for declaration in _nodes(tree, "declaration", "field_declaration"):
        if _text(declaration.child_by_field_name("type")) != "MQTTClient":
            continue
        member = declaration.child_by_field_name("default_value")
        for declarator in declaration.children_by_field_name("declarator"):
            arguments = declarator.child_by_field_name("value") or member
            if arguments is not None and arguments.type == "call_expression":
                arguments = arguments.child_by_field_name("arguments")  # = MQTTClient(256)
            if declarator.type == "identifier":
                edits.append(Edit(declarator.end_byte, declarator.end_byte, f"({BUFFER})".encode()))
            elif declarator.type == "field_identifier" and member is None:
                # A member: `MQTTClient client(1024);` would declare a method.
                sized = f" = MQTTClient({BUFFER})".encode()
                edits.append(Edit(declarator.end_byte, declarator.end_byte, sized))
            elif arguments is not None and arguments.type == "argument_list":
                size = arguments.named_children[0] if arguments.named_children else None
                if size is None:
                    edits.append(
                        Edit(arguments.start_byte, arguments.end_byte, f"({BUFFER})".encode())
                    )
                elif size.type == "number_literal" and int(_text(size)) < BUFFER:
                    edits.append(Edit(size.start_byte, size.end_byte, str(BUFFER).encode()))
    return edits


def _buffer_edits(source: bytes, calls: dict[str, list[Node]]) -> list[Edit]:
    edits = []
    for call in calls.get("setServer", []):
        statement, function = call.parent, call.child_by_field_name("function")
        if statement is None or statement.type != "expression_statement" or function is None:
            continue
        line_start = source.rfind(b"\n", 0, statement.start_byte) + 1
        indent = source[line_start : statement.start_byte].decode()
        client = _text(function.child_by_field_name("argument"))
        line = (
            f"\n{indent}{client}.setBufferSize({BUFFER});  // IoT Hub topics carry a property bag"
        )
        edits.append(Edit(statement.end_byte, statement.end_byte, line.encode()))
    return edits


def _mqtt_clients(tree: Tree) -> set[str]:
    return {
        _text(d).split("(")[0].strip()
        for declaration in _nodes(tree, "declaration", "field_declaration")
        if _text(declaration.child_by_field_name("type")) == "MqttClient"
        for d in declaration.children_by_field_name("declarator")
    }


def _mqtt_client_edits(source: bytes, tree: Tree, options: PatchOptions) -> list[Edit]:
    """ArduinoMqttClient: setId names the device; the user name is set right after it.
    The sketch's other tabs (`options.unit`) may declare the client or call setId."""
    hub = options.hub
    unit = [parse_cpp(other.encode()) for other in options.unit]
    clients = _mqtt_clients(tree).union(*map(_mqtt_clients, unit))
    calls = _calls(tree, clients)
    unit_calls = [_calls(other, clients) for other in unit]
    named = "setId" in calls or any("setId" in other for other in unit_calls)
    given = options.device_id.mode == "literal" and not named
    edits: list[Edit] = []
    if given and calls.get("connect"):
        device, edits = _given_id_edits(source, calls, options.device_id.value)
    elif given:
        device = ("lit", options.device_id.value)
    elif "setId" in calls:
        device, edits = _set_id_edits(source, calls)
    else:
        # Another tab names the device (and gets the user name); this one uses the id.
        device = (
            next((_set_id_edits(b"", other)[0] for other in unit_calls if "setId" in other), None)
            or _set_id_edits(source, calls)[0]
        )
    user_here = any(b"setUsernamePassword(IOTHUB_USER" in edit.text for edit in edits)
    if user_here and not re.search(r"#define\s+IOTHUB_USER\b", source.decode()):
        includes = [n for n in tree.root_node.children if n.type == "preproc_include"]
        at = includes[-1].end_byte if includes else 0
        user = c_concat(
            [("lit", f"{hub}/"), device, ("lit", f"/?api-version={IOTHUB_API_VERSION}")]
        )
        block = f"// IoT Hub's MQTT user name.\n#define IOTHUB_USER {user}\n"
        edits.append(Edit(at, at, block.encode()))
    for call in calls.get("setKeepAliveInterval", []):
        args = _args(call)
        numbers = re.findall(r"\d+", _text(args[0])) if args else []
        milliseconds = 1
        for number in numbers:
            milliseconds *= int(number)
        if numbers and milliseconds > IOTHUB_MAX_KEEP_ALIVE * 1000:
            limit = f"{IOTHUB_MAX_KEEP_ALIVE} * 1000L".encode()
            edits.append(Edit(args[0].start_byte, args[0].end_byte, limit))
    return edits + _literal_topic_edits(calls, device)


def _set_id_edits(
    source: bytes, calls: dict[str, list[Node]]
) -> tuple[tuple[str, str], list[Edit]]:
    device: tuple[str, str] | None = None
    edits: list[Edit] = []
    for call in calls.get("setId", []):
        args = _args(call)
        spelled = _text(args[0]) if args else ""
        if args and args[0].type == "string_literal":
            device = ("lit", spelled[1:-1])
        elif _MACRO.fullmatch(spelled):
            device = ("macro", spelled)
        else:
            raise PatchRefusedError("setId() without a literal or macro id: by hand")
        statement, function = call.parent, call.child_by_field_name("function")
        if "setUsernamePassword" not in calls and statement is not None and function is not None:
            client = _text(function.child_by_field_name("argument"))
            line_start = source.rfind(b"\n", 0, statement.start_byte) + 1
            indent = source[line_start : statement.start_byte].decode()
            line = (
                f'\n{indent}{client}.setUsernamePassword(IOTHUB_USER, "");  // no password: X.509'
            )
            edits.append(Edit(statement.end_byte, statement.end_byte, line.encode()))
    if device is None:
        raise PatchRefusedError(
            "no setId() call: ArduinoMqttClient then sends a random id (from millis()), and "
            "IoT Hub needs the device id: pass --device-id-from literal:ID"
        )
    return device, edits


def _given_id_edits(
    source: bytes, calls: dict[str, list[Node]], device_id: str
) -> tuple[tuple[str, str], list[Edit]]:
    """No setId() (AWS_IoT_WiFi.ino's is commented out): `--device-id-from literal:ID`
    names the device before the first connect(), with IoT Hub's user name."""
    call = min(calls["connect"], key=lambda node: node.start_byte)
    statement: Node | None = call
    while statement is not None and not statement.type.endswith("_statement"):
        statement = statement.parent
    function = call.child_by_field_name("function")
    if statement is None or function is None:
        raise PatchRefusedError("connect() outside a statement: set the id by hand")
    client = _text(function.child_by_field_name("argument"))
    line_start = source.rfind(b"\n", 0, statement.start_byte) + 1
    indent = source[line_start : statement.start_byte].decode()
    if indent.strip():
        raise PatchRefusedError("connect() shares its line with other code: set the id by hand")
    spelled = device_id.replace("\\", "\\\\").replace('"', '\\"')
    lines = (
        f'{client}.setId("{spelled}");  // the IoT Hub device id\n'
        f'{indent}{client}.setUsernamePassword(IOTHUB_USER, "");  // no password: X.509\n{indent}'
    )
    return ("lit", device_id), [Edit(statement.start_byte, statement.start_byte, lines.encode())]


def _literal_topic_edits(calls: dict[str, list[Node]], device: tuple[str, str]) -> list[Edit]:
    edits = []
    kind, value = device
    for method in ("beginMessage", "subscribe"):
        for call in calls.get(method, []):
            args = _args(call)
            if not args or args[0].type != "string_literal":
                continue
            spelled = _text(args[0])
            if spelled.startswith(('"devices/', '"$iothub/')) or "$aws/" in spelled:
                continue
            tokens = topic_tokens(spelled) or []
            if method == "beginMessage":
                spliced = f'"{value}"' if kind == "lit" else value
                new = events_topic("IOTHUB_DEVICE_ID", tokens).replace("IOTHUB_DEVICE_ID", spliced)
                new = c_concat(topic_tokens(new) or []) if kind == "lit" else new
            else:
                new = c_concat([("lit", "devices/"), device, ("lit", "/messages/devicebound/#")])
            edits.append(Edit(args[0].start_byte, args[0].end_byte, new.encode()))
    return edits


RECIPE = ArduinoRecipe()
