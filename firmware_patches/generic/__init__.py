"""Files of any stack that name AWS IoT: build scripts, manifests, settings.

Makefiles and shell scripts that call `aws iot describe-endpoint`, `.env` and JSON/YAML
settings, `platformio.ini`, `sdkconfig`, `package.json` are reported. Two kinds are
rewritten because their syntax is simple and the change is mechanical: a pip
requirements file that names awsiotsdk gains azure-iot-device (awsiotsdk stays until no
program imports it, which a human confirms), and an AWS endpoint string
literal in a Python settings module, a C/C++ header (`secrets.h`) or an ESP-IDF
`sdkconfig` value becomes the hub's host (found with LibCST or tree-sitter, so only
string literals change).
"""

from __future__ import annotations

import json
import re

import libcst as cst

from bridge.firmware.models import TouchPoint
from bridge.firmware.recipes import IOTHUB_MAX_KEEP_ALIVE, PatchOptions, PatchRefusedError
from bridge.firmware.touch import RULES, touch_points
from firmware_patches._c import apply_edits, error_count, parse_c, parse_cpp, string_literal_edits
from firmware_patches._python import parse as parse_python

__all__ = ["RECIPE"]

# AWS's device SDKs no recipe rewrites are AWS IoT code even when the endpoint comes from
# the command line, as in their samples: `Aws::Iot::MqttClient` (C++ v2), the Java v2
# `AwsIotMqttConnectionBuilder`, Java v1's `AWSIotMqttClient`, Android's `AWSIotMqttManager`.
_SDK_MARKERS = (
    r"Aws::Iot::|MqttClientConnectionConfigBuilder|AwsIotMqtt\w*Builder|AWSIotMqttClient|"
    r"AWSIotMqttManager|software\.amazon\.awssdk\.iot|com\.amazonaws\.services\.iot"
)
_MARKERS = re.compile(
    r"amazonaws\.com|describe-endpoint|\$aws/|AmazonRootCA|awsiotsdk|AWSIoTPythonSDK|"
    r"aws-iot-device-sdk|AWS_IOT|greengrass|aws_?endpoint|" + _SDK_MARKERS,
    re.IGNORECASE,
)
_ENDPOINT = next(rule.pattern for rule in RULES if rule.kind == "endpoint")
_HUB_HOST = re.compile(r"""["'=][\w-]+\.azure-devices\.net["']?""")
_REQUIREMENT = re.compile(r"^(?P<name>awsiotsdk)\b[^#\n]*", re.IGNORECASE | re.MULTILINE)
AZURE_IOT_DEVICE = "azure-iot-device>=2.14"
_C_FAMILY = (".c", ".h", ".cpp", ".hpp", ".ino")


# ESP-IDF's sdkconfig: one CONFIG_NAME="value" per line.
_SDKCONFIG_VALUE = re.compile(r'^(CONFIG_\w+=")([^"\n]*)(")$', re.MULTILINE)


def _sdkconfig(path: str) -> bool:
    # ESP-IDF's sdkconfig and Zephyr's prj.conf: the same Kconfig value syntax.
    base = path.rsplit("/", 1)[-1]
    return base.startswith("sdkconfig") or (base.endswith(".conf") and base.startswith("prj"))


# Kconfig: a string option's `default "value"`.
_KCONFIG_DEFAULT = re.compile(r'^(\s*default\s+")([^"\n]*)(")', re.MULTILINE)
# An endpoint looked up at build or deploy time: `$(aws iot describe-endpoint ...)`, the
# same in backquotes, or make's `$(shell aws iot describe-endpoint ...)`. The whole
# substitution (no nested parentheses) becomes the hub's host.
_LOOKUP = re.compile(
    r"\$\((?:shell\s+)?aws\s+iot\s+describe-endpoint\b[^()`\n]*\)"
    r"|`aws\s+iot\s+describe-endpoint\b[^`\n]*`"
)
# dotenv: NAME=value, the value optionally quoted.
_DOTENV_VALUE = re.compile(r"""^(\w+=)(["']?)([^"'\n]*)\2$""", re.MULTILINE)


# MQTT clients and AWS SDKs no recipe rewrites, by the files they are written in: the
# line building or connecting the client is where a human starts.
_JVM = (".java", ".kt")
_UNSUPPORTED_CLIENTS = (
    (re.compile(r"\bmosquitto_connect(?:_async|_bind)?\s*\("), "libmosquitto", _C_FAMILY),
    (re.compile(r"\bMQTTClient_connect\s*\("), "Eclipse Paho C (MQTTClient)", _C_FAMILY),
    (re.compile(r"\bMQTTAsync_connect\s*\("), "Eclipse Paho C (MQTTAsync)", _C_FAMILY),
    (
        re.compile(
            r"\bMqttClientConnectionConfigBuilder\b|\bMqtt5ClientBuilder\b|\bMqttClient\(\)"
        ),
        "aws-iot-device-sdk-cpp-v2",
        _C_FAMILY,
    ),
    (re.compile(r"\bAwsIotMqtt\w*Builder\b"), "aws-iot-device-sdk-java-v2", _JVM),
    (re.compile(r"\bnew\s+AWSIotMqttClient\b"), "aws-iot-device-sdk-java", _JVM),
    (re.compile(r"\bnew\s+AWSIotMqttManager\b"), "the AWS Mobile SDK for Android", _JVM),
    (re.compile(r"\bnew\s+Mqtt(?:Async)?Client\s*\("), "Eclipse Paho Java", _JVM),
    (re.compile(r"\bAddBroker\s*\("), "Eclipse Paho Go", (".go",)),
    (re.compile(r"\bMqttOptions::new\s*\("), "rumqttc", (".rs",)),
    (re.compile(r"\bCreateOptions\s*\(|\bpaho_mqtt::"), "Eclipse Paho Rust", (".rs",)),
    (
        re.compile(r"\bnew\s+MqttClient\s*\(|\bCreateMqttClient\s*\(|\bWithTcpServer\s*\("),
        "an MQTT client for .NET (M2Mqtt, MQTTnet)",
        (".cs",),
    ),
)
# mqtt.js (npm `mqtt`): `mqtt.connect(...)`, or `connect(...)` imported from it.
_MQTT_JS = re.compile(r"""require\(\s*['"]mqtt['"]\s*\)|\bfrom\s+['"]mqtt['"]""")
_MQTT_JS_CONNECT = (
    re.compile(r"\bmqtt\.connect(?:Async)?\s*\(|(?<![.\w])connect(?:Async)?\s*\("),
    "mqtt.js",
    (".js", ".cjs", ".mjs", ".ts", ".tsx"),
)
# Python MQTT clients no recipe rewrites (asyncio ones: aiomqtt, its former name
# asyncio-mqtt, gmqtt, amqtt/hbmqtt): an endpoint moved alone would reach the hub without
# its user name, with AWS's topics.
_PY_MQTT = re.compile(
    r"^[ \t]*(?:from|import)[ \t]+(aiomqtt|asyncio_mqtt|gmqtt|amqtt|hbmqtt)\b", re.MULTILINE
)
_AWS_SDKS = {"aws-iot-device-sdk-cpp-v2", "aws-iot-device-sdk-java-v2", "aws-iot-device-sdk-java"}
UNSUPPORTED_CLIENT = (
    "{library} is not rewritten by iot-bridge: by hand, connect to the IoT Hub host on "
    "port 8883 with the client id = the device id, the user name "
    "{{hub}}/{{device id}}/?api-version=2021-04-12 and no password, TLS trusting DigiCert "
    "Global Root G2 and Microsoft RSA Root CA 2017 with the device's certificate and key; "
    "publish telemetry to devices/{{device id}}/messages/events/ and take commands from "
    "devices/{{device id}}/messages/devicebound/#"
)
SDK_SUFFIX = (
    "; AWS's SDK sends a user name of its own (SDK metrics) and speaks AWS's shadow and "
    "jobs APIs, so pointing it at the hub cannot work: move the connection to an MQTT "
    "client or to Microsoft's Azure IoT device SDK for the language"
)


def _unsupported_clients(path: str, text: str, stack: str) -> list[TouchPoint]:
    known = _UNSUPPORTED_CLIENTS + ((_MQTT_JS_CONNECT,) if _MQTT_JS.search(text) else ())
    python = _PY_MQTT.search(text) if path.endswith(".py") else None
    if python is not None:
        known += ((re.compile(r"Client\s*\("), python.group(1), (".py",)),)
    clients = [c for c in known if path.endswith(c[2])]
    if not clients:
        return []
    points = []
    for number, line in enumerate(text.splitlines(), start=1):
        code = line.split("//", 1)[0]
        if re.match(r"\s*(?:import|using|use|#\s*include)\b", code):
            continue  # the library named, not used
        for pattern, name, _ in clients:
            if pattern.search(code) and not code.lstrip().startswith(("*", "/*")):
                library = name
                if library == "Eclipse Paho Java" and "software.amazon.awssdk" in text:
                    library = "aws-iot-device-sdk-java-v2"  # the CRT's own MqttClient
                reason = UNSUPPORTED_CLIENT.format(library=library)
                if library in _AWS_SDKS or library.startswith("the AWS"):
                    reason += SDK_SUFFIX
                points.append(
                    TouchPoint(
                        file=path,
                        line=number,
                        kind="mqtt_client",
                        stack=stack,
                        verdict="needs_human",
                        reason=reason,
                    )
                )
                break
    return points


def _within_limit(line: str) -> bool:
    """A keep-alive setting line whose only numbers are within IoT Hub's 1177 s."""
    numbers = [int(n) for n in re.findall(r"(?<![\w.])(\d+)[uUlL]*(?![\w.])", line)]
    return bool(numbers) and max(numbers) <= IOTHUB_MAX_KEEP_ALIVE


def _kconfig(path: str) -> bool:
    return path.rsplit("/", 1)[-1].startswith("Kconfig")


def _script(path: str) -> bool:
    base = path.rsplit("/", 1)[-1]
    return base.endswith((".sh", ".bash", ".mk")) or base in {"Makefile", "makefile", "GNUmakefile"}


def _dotenv(path: str) -> bool:
    base = path.rsplit("/", 1)[-1]
    return base == ".env" or base.startswith(".env.") or base.endswith(".env")


def _requirements(path: str) -> bool:
    base = path.rsplit("/", 1)[-1]
    return base.startswith("requirements") and base.endswith(".txt")


class GenericRecipe:
    """Settings, manifests and build scripts of any stack."""

    name = "generic"
    stack = "generic"

    def detect(self, path: str, text: str) -> bool:
        return bool(_MARKERS.search(text))

    def scan(self, path: str, text: str) -> list[TouchPoint]:
        rewritten: dict[str, str] = {}
        if (
            path.endswith((".py", ".json", *_C_FAMILY))
            or _sdkconfig(path)
            or _kconfig(path)
            or _dotenv(path)
        ):
            rewritten["endpoint"] = "AWS endpoint literal replaced with the IoT Hub host"
        if _script(path):
            rewritten["endpoint_lookup"] = "the describe-endpoint lookup becomes the IoT Hub host"
        if _requirements(path):
            rewritten["dependency"] = (
                f"{AZURE_IOT_DEVICE} added; drop awsiotsdk once no program imports awsiot"
            )
        points = touch_points(path, text, self.stack, rewritten)
        # A setting whose value is the endpoint the patch rewrites on that line is done.
        done = {
            p.line for p in points if p.verdict == "rewritten" and p.kind.startswith("endpoint")
        }
        # A setting already holding a hub's host (patched before) asks nothing either.
        lines = text.splitlines()
        done |= {
            p.line for p in points if p.kind == "config_key" and _HUB_HOST.search(lines[p.line - 1])
        }
        points = [
            p.model_copy(
                update={"verdict": "rewritten", "reason": "its value is now the IoT Hub host"}
            )
            if p.kind == "config_key" and p.line in done
            else p
            for p in points
        ]
        if _requirements(path):
            # AWSIoTPythonSDK v1 programs are not rewritten, so their dependency stays.
            points = [
                p.model_copy(
                    update={
                        "verdict": "needs_human",
                        "reason": "AWSIoTPythonSDK stays until its programs are ported by hand",
                    }
                )
                if p.kind == "dependency"
                and "awsiotpythonsdk" in text.splitlines()[p.line - 1].lower()
                else p
                for p in points
            ]
        # A keep-alive already within IoT Hub's limit (prj.conf's CONFIG_MQTT_KEEPALIVE=60,
        # `#define MQTT_KEEP_ALIVE 30`) asks nothing of anyone.
        lines = text.splitlines()
        points = [
            p for p in points if p.kind != "keep_alive" or not _within_limit(lines[p.line - 1])
        ]
        clients = _unsupported_clients(path, text, self.stack)
        return sorted([*points, *clients], key=lambda point: point.line) if clients else points

    def patch(self, path: str, text: str, options: PatchOptions) -> str | None:
        if _sdkconfig(path):
            new = _SDKCONFIG_VALUE.sub(
                lambda m: (
                    m.group(1) + options.hub + m.group(3)
                    if _ENDPOINT.fullmatch(m.group(2))
                    else m.group(0)
                ),
                text,
            )
        elif _kconfig(path):
            new = _KCONFIG_DEFAULT.sub(
                lambda m: (
                    m.group(1) + options.hub + m.group(3)
                    if _ENDPOINT.fullmatch(m.group(2))
                    else m.group(0)
                ),
                text,
            )
        elif _dotenv(path):
            new = _DOTENV_VALUE.sub(
                lambda m: (
                    m.group(1) + m.group(2) + options.hub + m.group(2)
                    if _ENDPOINT.fullmatch(m.group(3))
                    else m.group(0)
                ),
                text,
            )
        elif _script(path):
            new = _LOOKUP.sub(options.hub, text)
        elif path.endswith(".json"):
            new = _json_endpoints(path, text, options.hub)
        elif _requirements(path):
            if "azure-iot-device" in text or not _REQUIREMENT.search(text):
                return None
            new = _REQUIREMENT.sub(lambda m: f"{m.group(0)}\n{AZURE_IOT_DEVICE}", text, count=1)
        elif path.endswith(_C_FAMILY):
            new = _c_endpoints(path, text, options.hub)
        elif path.endswith(".py"):
            new = _python_endpoints(path, text, options.hub)
        else:
            return None
        return new if new != text else None


_CPP_SDK = re.compile(r"Aws::Iot::|MqttClientConnectionConfigBuilder|<aws/iot/")


def _json_endpoints(path: str, text: str, hub: str) -> str:
    """Every JSON string value that is an AWS endpoint becomes the hub; layout kept."""
    try:
        document = json.loads(text)
    except ValueError:
        raise PatchRefusedError(f"{path} is not valid JSON") from None
    found: set[str] = set()

    def walk(value: object) -> object:
        if isinstance(value, dict):
            return {key: walk(item) for key, item in value.items()}
        if isinstance(value, list):
            return [walk(item) for item in value]
        if isinstance(value, str) and _ENDPOINT.fullmatch(value):
            found.add(value)
            return hub
        return value

    expected = walk(document)
    new = text
    for endpoint in found:
        new = new.replace(json.dumps(endpoint), json.dumps(hub))
    # Only values changed: the document must read back as the expected one.
    if json.loads(new) != expected:
        raise PatchRefusedError(f"an endpoint in {path} is also a key: by hand")
    return new


def _python_endpoints(path: str, text: str, hub: str) -> str:
    library = _PY_MQTT.search(text)
    if library is not None:
        raise PatchRefusedError(
            f"a program on {library.group(1)}, which no recipe rewrites: its endpoint moved "
            "alone would reach the hub without IoT Hub's user name and with AWS's topics; "
            "port the connection by hand"
        )
    return parse_python(path, text).visit(_EndpointLiterals(hub)).code


def _c_endpoints(path: str, text: str, hub: str) -> str:
    if _CPP_SDK.search(text):
        # The endpoint alone moved would hand the hub AWS's SDK user name and APIs.
        raise PatchRefusedError(
            "a program on aws-iot-device-sdk-cpp-v2, which no recipe rewrites: its "
            "connection would reach the hub with AWS's SDK user name and APIs; port it by hand"
        )
    parse = parse_c if path.endswith((".c", ".h")) else parse_cpp
    tree = parse(text.encode())
    edits = string_literal_edits(tree, _ENDPOINT, hub)
    new = apply_edits(text.encode(), edits)
    if error_count(parse(new)) > error_count(tree):
        raise PatchRefusedError(f"the rewrite of {path} would not parse")
    return new.decode()


class _EndpointLiterals(cst.CSTTransformer):
    def __init__(self, hub: str) -> None:
        super().__init__()
        self.hub = hub

    def leave_SimpleString(
        self, original: cst.SimpleString, updated: cst.SimpleString
    ) -> cst.SimpleString:
        value = updated.evaluated_value
        if isinstance(value, str) and _ENDPOINT.fullmatch(value):
            return updated.with_changes(
                value=updated.prefix + updated.quote + self.hub + updated.quote
            )
        return updated


RECIPE = GenericRecipe()
