"""AWSIoTPythonSDK v1 (AWSIoTMQTTClient, AWSIoTMQTTShadowClient) moved to azure-iot-device.

v1 spreads a connection over several calls (constructor, configureEndpoint,
configureCredentials, connect), so the rewrite changes the two constructors and the
endpoint, and the injected adapter answers the rest with the same method names and
callback shapes: the program's own code around them does not change.
"""

from __future__ import annotations

import ast

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
    keyword_args,
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

__all__ = ["AwsIotPythonSdkRecipe"]

_MODULES = ("AWSIoTPythonSDK",)
_CONSTRUCTORS = {
    "AWSIoTMQTTClient": "iothub_v1_client",
    "AWSIoTMQTTShadowClient": "iothub_v1_shadow_client",
}
_SIGNATURE = ("clientID", "protocolType", "useWebsocket", "cleanSession")
_REFUSED = {
    "AWSIoTMQTTThingJobsClient": "AWS IoT Jobs client: map job documents to direct methods by hand",
    "configureIAMCredentials": "SigV4 websocket credentials: IoT Hub needs X.509 or SAS",
    "configureUsernamePassword": "custom authorizer user name: needs a human",
}
_REWRITTEN = {
    "endpoint": "configureEndpoint points at the IoT Hub host (IOTHUB_HOST)",
    "config_key": "configureEndpoint points at the IoT Hub host (IOTHUB_HOST)",
    "client_id": "one IoT Hub device id for every client object of the program",
    "certificate": "same certificate and key: X.509 thumbprint authentication",
    "root_ca": "trust comes from azure-iot-device's default store (IoT Hub's roots)",
    "keep_alive": "keep-alive capped at 1177 s",
    "topic": "publish becomes send_message(Message(...)) with awsTopic properties",
    "shadow": "shadowUpdate/shadowGet/delta become twin reported patch, get_twin, desired patches",
}


class AwsIotPythonSdkRecipe:
    """The python_awsiotpythonsdk recipe."""

    name = "python_awsiotpythonsdk"
    stack = "python_awsiotpythonsdk"

    def detect(self, path: str, text: str) -> bool:
        return path.endswith(".py") and (
            "AWSIoTPythonSDK" in text or "adapter for AWSIoTPythonSDK calls" in text
        )

    def scan(self, path: str, text: str) -> list[TouchPoint]:
        points = touch_points(path, text, self.stack, _REWRITTEN)
        blocks = _websocket_branches(text)
        return points if blocks is None else mark_branch(points, blocks)

    def patch(self, path: str, text: str, options: PatchOptions) -> str | None:
        for marker, reason in _REFUSED.items():
            if marker in text:
                raise PatchRefusedError(reason)
        module = parse(path, text)
        constructors: dict[str, str] = {}
        for name, helper in _CONSTRUCTORS.items():
            for local in imported_names(module, _MODULES, name):
                constructors[local] = helper
        tracker = ClientTracker(set(constructors))
        module.visit(tracker)
        rewriter = _Rewriter(options, constructors, tracker.clients, module)
        rewriter.websocket_branch = _websocket_branches(text) is not None
        module.visit(_IdCheck(rewriter))
        new = module.visit(rewriter)
        if not rewriter.changed:
            return None
        new = drop_unused_imports(new, _MODULES)
        block = with_auth(block_source("awsiotpythonsdk_adapter", options.hub), options)
        return inject_block(new, block, path)


class _Rewriter(cst.CSTTransformer):
    def __init__(
        self,
        options: PatchOptions,
        constructors: dict[str, str],
        clients: set[str],
        module: cst.Module,
    ) -> None:
        super().__init__()
        self.options = options
        self.constructors = constructors
        self.clients = clients
        self.assignments = module_assignments(module)
        self.client_ids: set[str] = set()
        self.changed = False
        # Websocket clients sit in an if/else whose other side builds an X.509 client.
        self.websocket_branch = False

    def skipped(self, call: cst.Call) -> bool:
        """A websocket client construction in such a branch: its statement will raise."""
        return self.websocket_branch and _uses_websocket(call)

    def leave_SimpleStatementLine(
        self, original: cst.SimpleStatementLine, updated: cst.SimpleStatementLine
    ) -> cst.SimpleStatementLine:
        calls = [n for n in _calls_in(original) if code_of(n.func) in self.constructors]
        if any(self.skipped(call) for call in calls):
            self.changed = True
            return raise_statement(updated)
        return updated

    def leave_IndentedBlock(
        self, original: cst.IndentedBlock, updated: cst.IndentedBlock
    ) -> cst.IndentedBlock:
        return drop_unreachable(updated)

    def client_id(self, call: cst.Call) -> cst.BaseExpression:
        args = keyword_args(call, _SIGNATURE)
        if _uses_websocket(call):
            raise PatchRefusedError("SigV4 websocket: IoT Hub needs X.509 or SAS")
        client_id = args.get("clientID")
        checked = client_id
        if isinstance(client_id, cst.Name) and client_id.value in self.assignments:
            checked = self.assignments[client_id.value]
        if checked is not None and RANDOM_ID.search(code_of(checked)):
            return device_id_expression(self.options.device_id, checked)
        return device_id_expression(self.options.device_id, client_id)

    def leave_Call(self, original: cst.Call, updated: cst.Call) -> cst.BaseExpression:
        func = code_of(updated.func)
        if func in self.constructors and not self.skipped(updated):
            self.changed = True
            device = self.client_id(updated)
            return cst.Call(cst.Name(self.constructors[func]), [cst.Arg(device)])
        if is_method_call(updated, self.clients, {"configureEndpoint"}):
            args = keyword_args(updated, ("hostName", "portNumber"))
            if code_of(args.get("hostName", cst.Name("x"))) == "IOTHUB_HOST":
                return updated
            self.changed = True
            return updated.with_changes(
                args=[
                    cst.Arg(cst.Name("IOTHUB_HOST"), comma=updated.args[0].comma),
                    cst.Arg(cst.Integer("8883")),
                ]
            )
        return updated


class _IdCheck(cst.CSTVisitor):
    # IoT Hub allows one connection per device id: all client objects must share one.
    def __init__(self, rewriter: _Rewriter) -> None:
        super().__init__()
        self.rewriter = rewriter
        self.ids: set[str] = set()

    def visit_Call(self, node: cst.Call) -> None:
        if code_of(node.func) in self.rewriter.constructors and not self.rewriter.skipped(node):
            self.ids.add(code_of(self.rewriter.client_id(node)))
            if len(self.ids) > 1:
                names = ", ".join(sorted(self.ids))
                raise PatchRefusedError(
                    f"client objects use different ids ({names}) and IoT Hub allows one "
                    "connection per device: pass --device-id-from"
                )


def _uses_websocket(call: cst.Call) -> bool:
    args = keyword_args(call, _SIGNATURE)
    return "useWebsocket" in args and code_of(args["useWebsocket"]) != "False"


def _calls_in(node: cst.CSTNode) -> list[cst.Call]:
    found: list[cst.Call] = []

    class _Calls(cst.CSTVisitor):
        def visit_Call(self, call: cst.Call) -> None:
            found.append(call)

    node.visit(_Calls())
    return found


def _ast_websocket(call: ast.Call) -> bool | None:
    """Whether an AWSIoTPythonSDK client construction asks for a websocket; None when the
    call constructs no client."""
    func = call.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
    if name not in _CONSTRUCTORS:
        return None
    flag = next((k.value for k in call.keywords if k.arg == "useWebsocket"), None)
    position = _SIGNATURE.index("useWebsocket")
    if flag is None and len(call.args) > position:
        flag = call.args[position]
    return flag is not None and not (isinstance(flag, ast.Constant) and flag.value is False)


def _websocket_branches(text: str) -> list[range] | None:
    """The websocket branches of a program that otherwise builds an X.509 client."""
    if "useWebsocket" not in text:
        return None
    return branch_lines(
        text,
        websocket=lambda call: _ast_websocket(call) is True,
        x509=lambda call: _ast_websocket(call) is False,
    )
