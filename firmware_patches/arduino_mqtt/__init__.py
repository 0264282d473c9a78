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
        return [
            p.model_copy(update={"verdict": "needs_human", "reason": human[p.kind]})
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
                edits += _client_edits(source, tree, clients, options.hub, unit)
        if not edits:
            return None
        new = apply_edits(source, edits)
        if error_count(parse_cpp(new)) > before:
            raise PatchRefusedError(f"the rewrite of {path} would not parse")
        return new.decode()


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
    """`setCACert(X)` and the X509List passed to `setTrustAnchors(&list)` trust IoT Hub's
    roots instead of AWS's; IOTHUB_ROOT_CAS is defined after the includes."""
    edits: list[Edit] = []
    anchors: set[str] = set()
    for call in _nodes(tree, "call_expression"):
        function = call.child_by_field_name("function")
        field = function.child_by_field_name("field") if function is not None else None
        args = _args(call)
        if field is None or len(args) != 1:
            continue
        if _text(field) == "setCACert":
            edits.append(Edit(args[0].start_byte, args[0].end_byte, ROOTS_NAME.encode()))
        elif _text(field) == "setTrustAnchors":
            anchors.add(_text(args[0]).lstrip("&").strip())
    # `X509List trust(AMAZON_ROOT_CA1);` parses as an init_declarator, or (a macro
    # argument looking like a type) as a function_declarator: the one argument either way.
    for declarator in _nodes(tree, "init_declarator", "function_declarator"):
        value = declarator.child_by_field_name("value") or declarator.child_by_field_name(
            "parameters"
        )
        name = _text(declarator.child_by_field_name("declarator"))
        if name in anchors and value is not None and len(value.named_children) == 1:
            argument = value.named_children[0]
            edits.append(Edit(argument.start_byte, argument.end_byte, ROOTS_NAME.encode()))
    if edits:
        definition = roots_definition(tree)
        if definition is not None:
            edits.append(definition)
    source = tree.root_node.text or b""
    return [edit for edit in edits if edit.text != source[edit.start : edit.end]]


def _endpoint_edits(tree: Tree, hub: str) -> list[Edit]:
    return string_literal_edits(tree, _ENDPOINT, hub)


def _clients(tree: Tree) -> set[str]:
    names = set()
    for declaration in _nodes(tree, "declaration"):
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


def _client_edits(
    source: bytes, tree: Tree, clients: set[str], hub: str, unit: list[Tree]
) -> list[Edit]:
    calls = _calls(tree, clients)
    unit_calls = [_calls(other, clients) for other in unit]
    defines = _defines(tree)
    unit_defines = {name for other in unit for name in _defines(other)} - set(defines)
    device, edits = _connect_edits(tree, calls, set(defines) | unit_defines, hub)
    if device is None:
        device = next(filter(None, map(_connect_id, unit_calls)), None)
    for call in calls.get("setKeepAlive", []):
        args = _args(call)
        number = args[0] if args and args[0].type == "number_literal" else None
        if number is not None and int(_text(number).rstrip("UuLl")) > IOTHUB_MAX_KEEP_ALIVE:
            limit = str(IOTHUB_MAX_KEEP_ALIVE).encode()
            edits.append(Edit(number.start_byte, number.end_byte, limit))
    topic_edits = _topic_edits(calls, defines, device, unit_calls, unit_defines)
    if topic_edits and "setBufferSize" not in calls:
        edits += _buffer_edits(source, calls) + _mqttclient_buffer_edits(tree)
    return edits + topic_edits


def _connect_edits(
    tree: Tree, calls: dict[str, list[Node]], defined: set[str], hub: str
) -> tuple[str | None, list[Edit]]:
    device = None
    edits: list[Edit] = []
    for call in calls.get("connect", []):
        args = _args(call)
        if not args or not _MACRO.fullmatch(_text(args[0])):
            raise PatchRefusedError(
                "connect() without a client id macro: build the user name by hand"
            )
        device = _text(args[0])
        if len(args) == 1:
            edits.append(Edit(args[0].end_byte, args[0].end_byte, b", IOTHUB_USER, NULL"))
    if device is not None and "IOTHUB_USER" not in defined:
        # A define, not an argument: C++ parses "a" MACRO "b" only once preprocessed.
        includes = [n for n in tree.root_node.children if n.type == "preproc_include"]
        at = includes[-1].end_byte if includes else 0
        user = (
            "// IoT Hub's MQTT user name; no password: the certificate authenticates.\n"
            f'#define IOTHUB_USER "{hub}/" {device} "/?api-version={IOTHUB_API_VERSION}"\n'
        )
        edits.append(Edit(at, at, user.encode()))
    return device, edits


def _connect_id(calls: dict[str, list[Node]]) -> str | None:
    """The client id macro another file of the sketch passes to connect()."""
    for call in calls.get("connect", []):
        args = _args(call)
        if args and _MACRO.fullmatch(_text(args[0])):
            return _text(args[0])
    return None


def _topic_edits(
    calls: dict[str, list[Node]],
    defines: dict[str, Node],
    device: str | None,
    unit_calls: list[dict[str, list[Node]]],
    unit_defines: set[str],
) -> list[Edit]:
    """Edits of this file's topics: literals in its own calls, and its `#define`s that
    a call here or in another file of the sketch (`unit_calls`) uses as a topic. A define
    made in another file (`unit_defines`) is left to that file's patch."""
    edits: list[Edit] = []
    done: set[int] = set()
    uses = [(calls, True)] + [(other, False) for other in unit_calls]
    for method in ("publish", "subscribe"):
        for found, own in uses:
            for call in found.get(method, []):
                args = _args(call)
                topic = args[0] if args else None
                if topic is None:
                    continue
                if topic.type == "identifier" and _text(topic) in defines:
                    node = defines[_text(topic)]
                elif own and not (topic.type == "identifier" and _text(topic) in unit_defines):
                    node = topic
                else:
                    continue  # another file's define or literal: its own patch edits it
                if node.start_byte in done:
                    continue
                new = _topic(_text(node).strip(), method, device)
                if new is not None:
                    done.add(node.start_byte)
                    edits.append(Edit(node.start_byte, node.end_byte, new.encode()))
    return edits


def _topic(spelled: str, method: str, device: str | None) -> str | None:
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
        return events_topic(device, tokens)
    if "$aws/" in spelled and "/shadow/" in spelled:
        return '"$iothub/twin/PATCH/properties/desired/#"'
    bound = [("lit", "devices/"), ("macro", device), ("lit", "/messages/devicebound/#")]
    return c_concat(bound)


def _mqttclient_buffer_edits(tree: Tree) -> list[Edit]:
    """256dpi's MQTTClient takes its buffer size in the constructor (default 128)."""
    edits = []
    for declaration in _nodes(tree, "declaration"):
        if _text(declaration.child_by_field_name("type")) != "MQTTClient":
            continue
        for declarator in declaration.children_by_field_name("declarator"):
            arguments = declarator.child_by_field_name("value")
            if arguments is not None and arguments.type == "call_expression":
                arguments = arguments.child_by_field_name("arguments")  # = MQTTClient(256)
            if declarator.type == "identifier":
                edits.append(Edit(declarator.end_byte, declarator.end_byte, f"({BUFFER})".encode()))
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
        for declaration in _nodes(tree, "declaration")
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
