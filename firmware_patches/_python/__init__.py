"""LibCST helpers the Python and MicroPython recipes share."""

from __future__ import annotations

import re
from importlib import resources

import libcst as cst

from bridge.firmware.recipes import DeviceIdSource, PatchOptions, PatchRefusedError

__all__ = [
    "RANDOM_ID",
    "block_source",
    "code_of",
    "device_id_expression",
    "imported_names",
    "inject_block",
    "keyword_args",
    "parse",
    "with_auth",
]

# Client ids built from these change on every boot: they cannot be an IoT Hub device id.
RANDOM_ID = re.compile(r"uuid|random|urandom|getrandbits|randint|time\(|ticks_")
_BEGIN = re.compile(r"^# >>> iot-bridge: (.+) >>>$", re.MULTILINE)


def parse(path: str, text: str) -> cst.Module:
    try:
        return cst.parse_module(text)
    except cst.ParserSyntaxError as error:
        raise PatchRefusedError(f"{path} does not parse: {error.message}") from None


def code_of(node: cst.CSTNode) -> str:
    return cst.Module([]).code_for_node(node)


def with_auth(block: str, options: PatchOptions) -> str:
    """The adapter block with the auth mode and, for SAS, where the device key is read."""
    key = "None"  # X.509: no key
    if options.auth == "sas":
        source = options.sas_key
        key = (
            f"_iothub_os.environ[{source.value!r}]"
            if source.mode == "env"
            else f"open({source.value!r}, encoding='utf-8').read().strip()"
        )
    return block.replace("@AUTH_MODE@", options.auth).replace("None  # @SAS_KEY@", key)


def block_source(name: str, hub: str) -> str:
    """The marked block of `firmware_patches/_runtime/<name>.py`, with the hub filled in."""
    text = resources.files("firmware_patches._runtime").joinpath(f"{name}.py").read_text()
    start = _BEGIN.search(text)
    assert start is not None
    end = text.index(f"# <<< iot-bridge: {start.group(1)} <<<")
    block = text[start.start() : end] + f"# <<< iot-bridge: {start.group(1)} <<<\n"
    return block.replace("@HUB@", hub)


def inject_block(module: cst.Module, block: str, path: str = "<patched>") -> str:
    """The module's code with `block` after its imports (or replacing the block a former
    patch left), checked to compile."""
    result = _with_block(module, block)
    try:
        compile(result, path, "exec", dont_inherit=True)
    except SyntaxError as error:
        raise PatchRefusedError(f"the rewrite of {path} would not compile: {error}") from None
    return result


def _with_block(module: cst.Module, block: str) -> str:
    text = module.code
    title = _BEGIN.search(block)
    assert title is not None
    begin = title.group(0)
    end = f"# <<< iot-bridge: {title.group(1)} <<<\n"
    if begin in text:
        head, _, rest = text.partition(begin)
        _, _, tail = rest.partition(end)
        return head + block + tail
    position = 0
    for index, statement in enumerate(module.body):
        if _is_preamble(statement):
            position = index + 1
        else:
            break
    head_module = module.with_changes(body=module.body[:position], footer=[])
    tail_module = module.with_changes(body=module.body[position:], header=[])
    head_code = head_module.code if position else ""
    tail_code = tail_module.code if position else module.code
    separator = "\n" if head_code and not head_code.endswith("\n\n") else ""
    return head_code + separator + block + "\n\n" + tail_code.lstrip("\n")


def _is_preamble(statement: cst.CSTNode) -> bool:
    if isinstance(statement, cst.SimpleStatementLine):
        return all(
            isinstance(small, cst.Import | cst.ImportFrom)
            or (isinstance(small, cst.Expr) and isinstance(small.value, cst.SimpleString))
            for small in statement.body
        )
    if isinstance(statement, cst.Try):
        # The try/except ImportError that picks ujson or json on MicroPython.
        return all(_is_preamble(inner) for inner in statement.body.body)
    return False


def imported_names(  # noqa: C901 - one branch per import form
    module: cst.Module, module_prefixes: tuple[str, ...], name: str
) -> set[str]:
    """Local spellings of `name` imported from one of `module_prefixes` (`X` or `alias.X`)."""
    found: set[str] = set()
    for node in module.body:
        if not isinstance(node, cst.SimpleStatementLine):
            continue
        for small in node.body:
            if isinstance(small, cst.ImportFrom) and small.module is not None:
                source = code_of(small.module)
                if source.startswith(module_prefixes) and not isinstance(
                    small.names, cst.ImportStar
                ):
                    for alias in small.names:
                        bound = code_of(alias.asname.name if alias.asname else alias.name)
                        if code_of(alias.name) == name:
                            found.add(bound)
                        elif source + "." + code_of(alias.name) in module_prefixes:
                            found.add(bound + "." + name)
            if isinstance(small, cst.Import):
                for alias in small.names:
                    imported = code_of(alias.name)
                    if imported.startswith(module_prefixes):
                        bound = code_of(alias.asname.name) if alias.asname else imported
                        found.add(bound + "." + name)
    return found


def keyword_args(call: cst.Call, signature: tuple[str, ...]) -> dict[str, cst.BaseExpression]:
    """The call's arguments by parameter name; PatchRefusedError on *args or **kwargs."""
    named: dict[str, cst.BaseExpression] = {}
    for index, arg in enumerate(call.args):
        if arg.star:
            raise PatchRefusedError(f"cannot map {arg.star}arguments of {code_of(call.func)}")
        if arg.keyword is None:
            if index >= len(signature):
                raise PatchRefusedError(f"too many arguments to {code_of(call.func)}")
            named[signature[index]] = arg.value
        else:
            named[arg.keyword.value] = arg.value
    return named


def device_id_expression(
    source: DeviceIdSource, client_id: cst.BaseExpression | None, *, micropython: bool = False
) -> cst.BaseExpression:
    """The device id expression for `--device-id-from`."""
    if source.mode == "literal":
        return cst.SimpleString(repr(source.value))
    if source.mode == "env":
        if micropython:
            raise PatchRefusedError(
                "MicroPython has no environment: use --device-id-from literal:ID"
            )
        return cst.parse_expression(f"_iothub_os.environ[{source.value!r}]")
    if client_id is None:
        raise PatchRefusedError("no client id to use as the device id: pass --device-id-from")
    if RANDOM_ID.search(code_of(client_id)):
        raise PatchRefusedError(
            "the client id is random, so it cannot be the device id: pass --device-id-from"
        )
    return client_id
