"""Arduino: found and reported; rewriting is left to a human for now."""

from __future__ import annotations

import re

from firmware_patches._scan_only import ScanOnlyRecipe

RECIPE = ScanOnlyRecipe(
    name="arduino_mqtt",
    stack="arduino_mqtt",
    suffixes=(".ino", ".cpp", ".h", ".hpp"),
    marker=re.compile(r"PubSubClient|MQTTClient|ArduinoMqttClient"),
    why="switch the broker to IoT Hub's host, user name and topics by hand; not automated yet",
)
