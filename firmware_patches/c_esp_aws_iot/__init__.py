"""ESP-IDF programs on esp-aws-iot (AWS IoT Device SDK for Embedded C v3) moved to esp-mqtt.

tree-sitter-c finds the SDK's `#include "aws_iot_*.h"` lines; the first becomes an
injected block (`_runtime/esp_aws_iot_adapter.h`) that answers the program's
`aws_iot_mqtt_*` and `aws_iot_shadow_*` calls with ESP-IDF's esp-mqtt: an
`esp_mqtt_client_config_t` for IoT Hub's host, user name and client id (the device id),
the device's certificate and key, and IoT Hub's trust anchors; telemetry to
`devices/{id}/messages/events/` with the awsTopic properties; shadow update/get/delta to
twin reported patches, twin GET and desired patches. The program's own code is not
touched. `aws_iot_config.h` is no longer included: the adapter defines `AWS_IOT_MQTT_HOST` (the
hub) and `AWS_IOT_MQTT_PORT`; a program using other settings from it is refused. The component's
`CMakeLists.txt` requires `mqtt` instead of esp-aws-iot; sdkconfig and Kconfig endpoint
values are the generic recipe's. Jobs, OTA and SDK calls the adapter does not answer are
refused with their names.
"""

from __future__ import annotations

import re
from importlib import resources

from tree_sitter import Tree

from bridge.firmware.models import TouchPoint
from bridge.firmware.recipes import PatchOptions, PatchRefusedError
from bridge.firmware.touch import RULES, Rule, touch_points
from firmware_patches._c import SAS_REFUSED, Edit, apply_edits, error_count, iothub_roots_c, parse_c

__all__ = ["RECIPE"]

_BEGIN = "/* >>> iot-bridge: IoT Hub adapter for esp-aws-iot calls >>> */"
_END = "/* <<< iot-bridge: IoT Hub adapter for esp-aws-iot calls <<< */\n"
_SDK_HEADERS = re.compile(
    r"aws_iot_(?:mqtt_client_interface|mqtt_client|shadow_interface|shadow_json_data|"
    r"version|log|json_utils|error|shadow_actions)\.h"
)
_CONFIG_HEADER = "aws_iot_config.h"
_ADAPTER_MACROS = frozenset({"AWS_IOT_MQTT_HOST", "AWS_IOT_MQTT_PORT"})
_MARKER = re.compile(r"aws_iot_mqtt_client_interface\.h|aws_iot_shadow_interface\.h")
_CMAKE_COMPONENT = re.compile(r"(?<![\w-])(?:esp-aws-iot|aws_iot)(?![\w-])")
_REFUSED = {
    "aws_iot_jobs_": "AWS IoT Jobs: map each job to a direct method by hand",
    "OTA_": "OTA over AWS jobs/streams: move to Device Update for IoT Hub",
    "aws_iot_shadow_delete": "shadow delete: twins cannot be deleted; by hand",
}
_RULES = (
    Rule("sdk", _SDK_HEADERS, "AWS IoT Device SDK header"),
    Rule("shadow", re.compile(r"jsonStruct_t|aws_iot_shadow_\w+|aws_iot_finalize_json"), ""),
    Rule("client_id", re.compile(r"pClientID\b|pMqttClientId\b|pMyThingName\b"), ""),
    Rule(
        "certificate",
        re.compile(
            r"pDeviceCertLocation|pDevicePrivateKeyLocation|"
            r"pClientCRT|pClientKey"
        ),
        "",
    ),
    Rule("root_ca", re.compile(r"pRootCALocation|pRootCA\b"), ""),
    Rule("config_key", re.compile(r"pHostURL|pHost\b|AWS_IOT_MQTT_PORT"), ""),
    Rule("topic", re.compile(r"aws_iot_mqtt_(?:publish|subscribe)\("), ""),
)
_CMAKE_RULE = (Rule("dependency", _CMAKE_COMPONENT, "esp-aws-iot component"),)
_REWRITTEN = {
    "sdk": "the SDK's calls are answered by the injected esp-mqtt adapter",
    "endpoint": "esp-mqtt connects to the IoT Hub host (IOTHUB_HOST)",
    "config_key": "esp-mqtt connects to the IoT Hub host on 8883 (IOTHUB_HOST)",
    "client_id": "client id is the device id; IoT Hub's user name is set",
    "certificate": "same certificate and key: X.509 thumbprint authentication",
    "root_ca": "IoT Hub's roots (DigiCert Global Root G2, Microsoft RSA Root CA 2017) "
    "are embedded in the adapter",
    "keep_alive": "keep-alive capped at 1177 s",
    "topic": "publishes go to devices/{id}/messages/events/ with awsTopic properties; "
    "subscriptions to C2D or desired patches",
    "shadow": "shadow update/get/delta become twin reported patch, twin GET, desired patches",
    "dependency": "the component requires mqtt (esp-mqtt) instead of esp-aws-iot",
}


def _adapter() -> str:
    text = (
        resources.files("firmware_patches._runtime").joinpath("esp_aws_iot_adapter.h").read_text()
    )
    return text[text.index(_BEGIN) : text.index(_END) + len(_END)]


def _answered() -> set[str]:
    """The SDK names the adapter defines: any other aws_iot_* call cannot be answered."""
    return set(re.findall(r"\b(aws_iot_\w+)\s*\(", _adapter()))


class EspAwsIotRecipe:
    """The c_esp_aws_iot recipe."""

    name = "c_esp_aws_iot"
    stack = "c_esp_aws_iot"

    def detect(self, path: str, text: str) -> bool:
        base = path.rsplit("/", 1)[-1]
        if base == "CMakeLists.txt":
            return "idf_component_register" in text and bool(_CMAKE_COMPONENT.search(text))
        return path.endswith((".c", ".h")) and (bool(_MARKER.search(text)) or _BEGIN in text)

    def scan(self, path: str, text: str) -> list[TouchPoint]:
        if path.endswith("CMakeLists.txt"):
            return touch_points(path, text, self.stack, _REWRITTEN, rules=_CMAKE_RULE)
        return touch_points(path, text, self.stack, _REWRITTEN, rules=(*_RULES, *RULES))

    def patch(self, path: str, text: str, options: PatchOptions) -> str | None:
        if path.endswith("CMakeLists.txt"):
            return _cmake(text)
        if options.auth == "sas":
            raise PatchRefusedError(SAS_REFUSED)
        if options.device_id.mode == "env":
            raise PatchRefusedError("an ESP32 has no environment: use --device-id-from literal:ID")
        if _BEGIN not in text and not _ESP_IDF.search(text):
            raise PatchRefusedError(NOT_ESP_IDF)
        _check(text)
        source = text.encode()
        tree = parse_c(source)
        before = error_count(tree)
        edits = _include_edits(tree, _block(options))
        if not edits:
            return None
        new = apply_edits(source, edits)
        if error_count(parse_c(new)) > before:
            raise PatchRefusedError(f"the rewrite of {path} would not parse")
        return new.decode()


# The same SDK (v3, aws_iot_mqtt_*) also runs on Linux with mbedTLS: its own
# samples/linux/*, built with make. Only ESP-IDF has the esp-mqtt the adapter stands on.
_ESP_IDF = re.compile(r"#\s*include\s*[<\"](?:esp_|freertos/|sdkconfig)|\bapp_main\b|\bCONFIG_\w+")
NOT_ESP_IDF = (
    "AWS IoT Device SDK for Embedded C v3 outside ESP-IDF (no esp_*/freertos/ includes, "
    "app_main or CONFIG_ settings, as in the SDK's samples/linux): the rewrite stands on "
    "ESP-IDF's esp-mqtt, which this platform lacks; port the program to an MQTT client "
    "with IoT Hub's host, user name {hub}/{device id}/?api-version=2021-04-12 and roots by "
    "hand (or to coreMQTT, which this tool rewrites)"
)


def _check(text: str) -> None:
    """Refuse programs using SDK calls or settings the adapter does not answer."""
    program = text
    if _BEGIN in text:
        head, _, rest = text.partition(_BEGIN)
        program = head + rest.partition(_END)[2]
    for marker, reason in _REFUSED.items():
        if marker in program:
            raise PatchRefusedError(reason)
    macros = set(re.findall(r"\bAWS_IOT_[A-Z0-9_]+\b", program)) - _ADAPTER_MACROS
    if macros:
        names = ", ".join(sorted(macros))
        raise PatchRefusedError(f"settings from aws_iot_config.h the adapter lacks: {names}")
    called = set(re.findall(r"\b(aws_iot_\w+)\s*\(", program))
    unknown = called - _answered() - _own_functions(parse_c(program.encode()))
    if unknown:
        names = ", ".join(sorted(unknown))
        raise PatchRefusedError(f"esp-aws-iot calls the adapter does not answer: {names}")


def _own_functions(tree: Tree) -> set[str]:
    """Functions the program defines itself (esp-aws-iot samples name theirs aws_iot_task)."""
    names, stack = set(), [tree.root_node]
    while stack:
        node = stack.pop()
        if node.type == "function_declarator":
            name = node.child_by_field_name("declarator")
            if name is not None and name.text:
                names.add(name.text.decode())
        stack.extend(node.children)
    return names


def _block(options: PatchOptions) -> str:
    device = ""
    if options.device_id.mode == "literal":
        value = options.device_id.value.replace("\\", "\\\\").replace('"', '\\"')
        device = f'#define IOTHUB_DEVICE_ID "{value}"'
    return (
        _adapter()
        .replace("@HUB@", options.hub)
        .replace("@DEVICE_ID@\n", device + "\n" if device else "")
        .replace("@ROOTS@", iothub_roots_c())
    )


def _include_edits(tree: Tree, block: str) -> list[Edit]:
    edits: list[Edit] = []
    placed = False
    stack = [tree.root_node]
    found = []
    while stack:
        node = stack.pop()
        if node.type == "preproc_include":
            found.append(node)
        stack.extend(reversed(node.children))
    text = tree.root_node.text or b""
    existing = text.find(_BEGIN.encode())
    if existing >= 0:
        # A former patch: regenerate its block in place.
        end = text.index(_END.encode(), existing) + len(_END)
        return [Edit(existing, end, block.encode())] if text[existing:end] != block.encode() else []
    for node in found:
        target = node.child_by_field_name("path")
        name = target.text.decode().strip('"<>') if target is not None and target.text else ""
        if name == _CONFIG_HEADER:
            # The SDK's settings (the port's copy or the program's own) are not needed by
            # esp-mqtt; the adapter defines the AWS_IOT_MQTT_* names programs use.
            edits.append(Edit(node.start_byte, node.end_byte, b""))
        elif _SDK_HEADERS.fullmatch(name):
            replacement = b"" if placed else block.encode()
            placed = True
            edits.append(Edit(node.start_byte, node.end_byte, replacement))
    return edits if placed else []


def _cmake(text: str) -> str | None:
    """esp-aws-iot / aws_iot in REQUIRES or PRIV_REQUIRES becomes mqtt (esp-mqtt)."""
    new = _CMAKE_COMPONENT.sub("mqtt", text)
    new = re.sub(r"\bmqtt(\s+mqtt)+\b", "mqtt", new)
    return new if new != text else None


RECIPE = EspAwsIotRecipe()
