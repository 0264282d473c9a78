"""One recipe shape for Python MQTT clients that stay on their MQTT library (umqtt, paho).

The rewrite is syntax-aware (LibCST finds the client, its constructor and its calls and
changes only their arguments); topic mapping happens at run time in the injected block,
so topics built at run time map as well as literal ones.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import libcst as cst

from bridge.firmware.models import TouchPoint
from bridge.firmware.recipes import PatchOptions, PatchRefusedError
from bridge.firmware.touch import RULES, Rule, touch_points
from firmware_patches._python import (
    RANDOM_ID,
    block_source,
    code_of,
    device_id_expression,
    imported_names,
    inject_block,
    keyword_args,
    parse,
)
from firmware_patches._python.transform import (
    ClientTracker,
    EndpointLiterals,
    is_method_call,
    module_assignments,
)

__all__ = ["MqttRecipe"]

HUB_NAME = "IOTHUB_HOST"
_WRAPPERS = ("iothub_publish", "iothub_subscription", "iothub_callback", "iothub_on_message")
_REWRITTEN = {
    "endpoint": "the client connects to the IoT Hub host instead (IOTHUB_HOST)",
    "config_key": "the client connects to the IoT Hub host instead (IOTHUB_HOST)",
    "client_id": "client id is the IoT Hub device id; user name is IoT Hub's",
    "certificate": "same certificate and key: X.509 thumbprint authentication",
    "keep_alive": "keep-alive capped at 1177 s",
    "topic": "topics mapped at run time to devices/{id}/messages/events/ with awsTopic properties",
    "shadow": "shadow update/get/delta mapped to twin reported patch, twin GET, desired patch",
    "named_shadow": "named shadow mapped to twin properties under shadows.<name>",
}


# paho given an ssl.SSLContext (`tls_set_context`), as in AWS's "MQTT with TLS client
# authentication on port 443" Python sample: the context loads AWS's root CA and offers
# AWS IoT's ALPN protocol. Both are touch points of paho programs only.
_CONTEXT_RULES = (
    Rule(
        "root_ca",
        re.compile(r"\.load_verify_locations\(|create_default_context\(.*ca(?:file|path|data)\s*="),
        "",
    ),
    Rule(
        "alpn",
        re.compile(r"x-amzn-mqtt-ca|\.set_alpn_protocols\("),
        "AWS IoT's ALPN protocol (MQTT on port 443): IoT Hub takes MQTT on 8883",
    ),
)
_ALPN = "x-amzn-mqtt-ca"


def _call(name: str, *args: cst.BaseExpression) -> cst.Call:
    return cst.Call(cst.Name(name), [cst.Arg(arg) for arg in args])


def _wrapped(expression: cst.BaseExpression, name: str) -> bool:
    return isinstance(expression, cst.Call) and code_of(expression.func) == name


_BOOLS = frozenset({"True", "False"})


@dataclass(frozen=True)
class MqttRecipe:
    """umqtt and paho: constructor, connect, TLS, publish, subscribe and callbacks."""

    name: str
    stack: str
    modules: tuple[str, ...]
    constructor: str
    constructor_signature: tuple[str, ...]
    publish_signature: tuple[str, ...]
    micropython: bool = False
    aws_markers: re.Pattern[str] = field(
        default=re.compile(
            r"amazonaws\.com|\$aws/|AmazonRootCA|AWS_IOT|aws_iot|iot_endpoint", re.IGNORECASE
        )
    )

    def detect(self, path: str, text: str) -> bool:
        if not path.endswith(".py"):
            return False
        imports = any(f"import {mod}" in text or f"from {mod} " in text for mod in self.modules)
        return imports and (bool(self.aws_markers.search(text)) or HUB_NAME in text)

    def scan(self, path: str, text: str) -> list[TouchPoint]:
        rewritten = dict(_REWRITTEN)
        rules = RULES
        if not self.micropython:
            rewritten["root_ca"] = (
                "TLS trusts the system store (tls_set(ca_certs=None), or the SSLContext's "
                "load_default_certs()), which holds IoT Hub's roots"
            )
            rewritten["alpn"] = "AWS IoT's ALPN protocol is no longer offered; IoT Hub on 8883"
            if "tls_set_context" in text:
                rules = RULES + _CONTEXT_RULES
        points = touch_points(path, text, self.stack, rewritten, rules=rules)
        if RANDOM_ID.search(text) and any(p.kind == "client_id" for p in points):
            points = [
                p.model_copy(
                    update={
                        "verdict": "needs_human",
                        "reason": "random client id: the device id must come from "
                        "--device-id-from env:NAME or literal:ID; drop the random id by hand",
                    }
                )
                if p.kind == "client_id" and RANDOM_ID.search(text.splitlines()[p.line - 1])
                else p
                for p in points
            ]
        return points

    def patch(self, path: str, text: str, options: PatchOptions) -> str | None:
        if options.auth == "sas":
            raise PatchRefusedError(
                "SAS on a raw MQTT client: the password is a token that expires, so the "
                "program must mint a new one (HMAC-SHA256) before each reconnect; "
                "MicroPython has no hmac module and paho keeps one fixed password: keep "
                "X.509 (the default) or add that by hand"
            )
        module = parse(path, text)
        constructors = imported_names(module, self.modules, self.constructor)
        tracker = ClientTracker(constructors)
        module.visit(tracker)
        if not tracker.clients:
            raise PatchRefusedError(f"no {self.constructor}(...) client found in {path}")
        rewriter = self._rewriter(module, constructors, tracker.clients, options)
        new = module.visit(rewriter)
        if not rewriter.changed:
            return None
        # The endpoint constant may also be TLS's server_hostname (SNI, verification).
        new = new.visit(EndpointLiterals(options.hub))
        return inject_block(new, block_source("mqtt_router", options.hub), path)

    def _rewriter(
        self,
        module: cst.Module,
        constructors: set[str],
        clients: set[str],
        options: PatchOptions,
    ) -> _Rewriter:
        return _Rewriter(self, module, constructors, clients, options)


class _Rewriter(cst.CSTTransformer):
    def __init__(
        self,
        recipe: MqttRecipe,
        module: cst.Module,
        constructors: set[str],
        clients: set[str],
        options: PatchOptions,
    ) -> None:
        super().__init__()
        self.recipe = recipe
        self.constructors = constructors
        self.clients = clients
        self.options = options
        self.assignments = module_assignments(module)
        self.changed = False
        self.paho = not recipe.micropython
        self.has_username = "iothub_user()" in module.code
        # The program hands paho an ssl.SSLContext it builds itself.
        self.context = self.paho and "tls_set_context" in module.code

    # --- constructor -------------------------------------------------------------------
    def _device_id(self, client_id: cst.BaseExpression | None) -> cst.BaseExpression:
        checked = client_id
        if isinstance(client_id, cst.Name) and client_id.value in self.assignments:
            # CLIENT_ID = "sensor-" + str(random.getrandbits(16)) is as random as its value.
            checked = self.assignments[client_id.value]
        device = device_id_expression(
            self.options.device_id, checked, micropython=self.recipe.micropython
        )
        return client_id if device is checked and client_id is not None else device

    def _signature(self, call: cst.Call) -> tuple[str, ...]:
        """paho-mqtt 2 put `callback_api_version` first: `Client(CallbackAPIVersion.VERSION2,
        "id")` passes the client id second."""
        first = call.args[0] if call.args else None
        if (
            self.paho
            and first is not None
            and first.keyword is None
            and "CallbackAPIVersion" in code_of(first.value)
        ):
            return ("callback_api_version", *self.recipe.constructor_signature)
        return self.recipe.constructor_signature

    def _constructor(self, call: cst.Call) -> cst.Call:
        args = keyword_args(call, self._signature(call))
        client_id = args.get("client_id")
        if client_id is not None and _wrapped(client_id, "iothub_device"):
            return call  # patched before
        device = self._device_id(client_id)
        replace: dict[str, cst.BaseExpression] = {"client_id": _call("iothub_device", device)}
        if self.recipe.micropython:
            replace |= {
                "server": cst.Name(HUB_NAME),
                "port": cst.Integer("8883"),
                "user": _call("iothub_user"),
                # umqtt sends a password whenever it sends a user name; X.509 needs none.
                "password": cst.SimpleString('""'),
                "ssl": cst.Name("True"),
            }
            if "keepalive" in args:
                replace["keepalive"] = _call("iothub_keep_alive", args["keepalive"])
            ssl = args.get("ssl")
            if ssl is not None and not (isinstance(ssl, cst.Name) and ssl.value in _BOOLS):
                # umqtt.simple 1.4+ (MicroPython 1.22+) takes an ssl.SSLContext holding
                # the device's certificate and key: True there has no wrap_socket().
                del replace["ssl"]
        return self._with_args(call, replace)

    def _with_args(self, call: cst.Call, replace: dict[str, cst.BaseExpression]) -> cst.Call:
        signature = self._signature(call)
        new_args: list[cst.Arg] = []
        done: set[str] = set()
        for index, arg in enumerate(call.args):
            name = arg.keyword.value if arg.keyword else signature[index]
            if name in replace:
                new_args.append(arg.with_changes(value=replace[name]))
                done.add(name)
            else:
                new_args.append(arg)
        positional_ok = all(a.keyword is None for a in new_args)
        for name, value in replace.items():
            if name in done:
                continue
            if positional_ok and len(new_args) == signature.index(name):
                new_args.append(cst.Arg(value))
            else:
                new_args.append(cst.Arg(value, keyword=cst.Name(name), equal=_EQUAL))
                positional_ok = False
        return call.with_changes(args=_commas(new_args, call))

    # --- calls on the client -------------------------------------------------------------
    def leave_Call(self, original: cst.Call, updated: cst.Call) -> cst.BaseExpression:
        if code_of(updated.func) in self.constructors:
            new = self._constructor(updated)
        elif is_method_call(updated, self.clients, {"publish"}):
            new = self._publish(updated)
        elif is_method_call(updated, self.clients, {"subscribe"}):
            new = self._wrap_first(updated, "iothub_subscription")
        elif is_method_call(updated, self.clients, {"set_callback"}):
            new = self._wrap_first(updated, "iothub_callback")
        elif self.paho and is_method_call(updated, self.clients, {"connect", "connect_async"}):
            new = self._paho_connect(updated)
        elif self.paho and is_method_call(updated, self.clients, {"tls_set"}):
            new = self._paho_tls(updated)
        elif self.paho and is_method_call(updated, self.clients, {"message_callback_add"}):
            raise PatchRefusedError("message_callback_add filters on AWS topics: needs a human")
        elif self.context:
            new = self._context_call(updated)
        else:
            return updated
        if new is not updated:
            self.changed = True
        return new

    def _publish(self, call: cst.Call) -> cst.Call:
        if call.args and call.args[0].star == "*":
            return call
        args = keyword_args(call, self.recipe.publish_signature)
        topic_name, payload_name = self.recipe.publish_signature[:2]
        if topic_name not in args:
            raise PatchRefusedError(f"publish without a topic: {code_of(call)}")
        payload = args.get(payload_name, cst.SimpleString('""'))
        routed = cst.Arg(_call("iothub_publish", args[topic_name], payload), star="*")
        rest = [
            cst.Arg(value, keyword=cst.Name(name), equal=_EQUAL)
            for name, value in args.items()
            if name not in {topic_name, payload_name}
        ]
        return call.with_changes(args=_commas([routed, *rest], call))

    def _wrap_first(self, call: cst.Call, wrapper: str) -> cst.Call:
        if not call.args or call.args[0].keyword is not None:
            raise PatchRefusedError(f"unexpected arguments: {code_of(call)}")
        first = call.args[0]
        if _wrapped(first.value, wrapper):
            return call
        if isinstance(first.value, cst.List | cst.Tuple):
            raise PatchRefusedError("subscribing to a list of topics at once: needs a human")
        return call.with_changes(
            args=[first.with_changes(value=_call(wrapper, first.value)), *call.args[1:]]
        )

    def _paho_connect(self, call: cst.Call) -> cst.Call:
        args = keyword_args(call, ("host", "port", "keepalive", "bind_address"))
        if isinstance(args.get("host"), cst.Name) and code_of(args["host"]) == HUB_NAME:
            return call
        replace: dict[str, cst.BaseExpression] = {
            "host": cst.Name(HUB_NAME),
            "port": cst.Integer("8883"),
        }
        if "keepalive" in args:
            replace["keepalive"] = _call("iothub_keep_alive", args["keepalive"])
        return _replace_args(call, ("host", "port", "keepalive", "bind_address"), replace)

    def _paho_tls(self, call: cst.Call) -> cst.Call:
        signature = ("ca_certs", "certfile", "keyfile", "cert_reqs", "tls_version", "ciphers")
        args = keyword_args(call, signature)
        if "ca_certs" in args and code_of(args["ca_certs"]) == "None":
            return call
        # None: the system store, which holds IoT Hub's roots (DigiCert Global Root G2 and
        # Microsoft RSA Root CA 2017); the AWS root CA cannot vouch for IoT Hub.
        return _replace_args(call, signature, {"ca_certs": cst.Name("None")})

    def _context_call(self, call: cst.Call) -> cst.Call:
        """The SSLContext handed to `tls_set_context`: AWS's root CA gives way to the
        system store (IoT Hub's roots), and AWS IoT's ALPN protocol is no longer offered
        (IoT Hub takes MQTT on 8883, where the patch connects)."""
        method = call.func.attr.value if isinstance(call.func, cst.Attribute) else ""
        if method == "load_verify_locations":
            attribute = cst.ensure_type(call.func, cst.Attribute)
            name = cst.Name("load_default_certs")
            return call.with_changes(func=attribute.with_changes(attr=name), args=[])
        if method == "set_alpn_protocols" and call.args and code_of(call.args[0].value) != "[]":
            return call.with_changes(args=[call.args[0].with_changes(value=cst.List([]))])
        if code_of(call.func) in {"ssl.create_default_context", "create_default_context"}:
            kept = [
                arg
                for arg in call.args
                if not (arg.keyword and arg.keyword.value in {"cafile", "capath", "cadata"})
            ]
            if len(kept) != len(call.args):
                return call.with_changes(args=_commas(kept, call) if kept else [])
        return call

    # --- statements: paho's user name, on_message --------------------------------------
    def leave_Assign(self, original: cst.Assign, updated: cst.Assign) -> cst.Assign:
        if (
            self.paho
            and len(updated.targets) == 1
            and isinstance(updated.targets[0].target, cst.Attribute)
            and updated.targets[0].target.attr.value == "on_message"
            and code_of(updated.targets[0].target.value) in self.clients
            and not _wrapped(updated.value, "iothub_on_message")
        ):
            self.changed = True
            return updated.with_changes(value=_call("iothub_on_message", updated.value))
        return updated

    def leave_SimpleStatementLine(
        self, original: cst.SimpleStatementLine, updated: cst.SimpleStatementLine
    ) -> cst.BaseStatement | cst.FlattenSentinel[cst.BaseStatement]:
        if not self.paho or self.has_username:
            return updated
        for small in updated.body:
            if (
                isinstance(small, cst.Assign)
                and isinstance(small.value, cst.Call)
                and code_of(small.value.func) in self.constructors
            ):
                target = code_of(small.targets[0].target)
                user = cst.parse_statement(f"{target}.username_pw_set(iothub_user())\n")
                self.has_username = True
                self.changed = True
                return cst.FlattenSentinel([updated, user])
        return updated


_EQUAL = cst.AssignEqual(
    whitespace_before=cst.SimpleWhitespace(""), whitespace_after=cst.SimpleWhitespace("")
)


def _commas(args: list[cst.Arg], call: cst.Call) -> list[cst.Arg]:
    """Commas between arguments in the original's layout (one per line stays one per line)."""
    separator: cst.Comma | cst.MaybeSentinel = cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))
    if len(call.args) > 1 and isinstance(call.args[0].comma, cst.Comma):
        separator = call.args[0].comma
    trailing = call.args[-1].comma if call.args else cst.MaybeSentinel.DEFAULT
    if isinstance(trailing, cst.Comma) and len(call.args) == 1:
        separator = trailing
    out = [
        arg
        if isinstance(arg.comma, cst.Comma) and index < len(call.args) - 1
        else arg.with_changes(comma=separator)
        for index, arg in enumerate(args[:-1])
    ]
    if args:
        out.append(args[-1].with_changes(comma=trailing))
    return out


def _replace_args(
    call: cst.Call, signature: tuple[str, ...], replace: dict[str, cst.BaseExpression]
) -> cst.Call:
    new_args = []
    done = set()
    for index, arg in enumerate(call.args):
        name = arg.keyword.value if arg.keyword else signature[index]
        if name in replace:
            new_args.append(arg.with_changes(value=replace[name]))
            done.add(name)
        else:
            new_args.append(arg)
    for name, value in replace.items():
        if name not in done:
            new_args.append(cst.Arg(value, keyword=cst.Name(name), equal=_EQUAL))
    return call.with_changes(args=_commas(new_args, call))
