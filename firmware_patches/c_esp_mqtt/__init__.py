"""ESP-IDF esp-mqtt: found and reported; rewriting is left to a human for now."""

from __future__ import annotations

import re

from firmware_patches._scan_only import ScanOnlyRecipe

RECIPE = ScanOnlyRecipe(
    name="c_esp_mqtt",
    stack="c_esp_mqtt",
    suffixes=(".c", ".h"),
    marker=re.compile(r"esp_mqtt_client|CONFIG_MQTT|CONFIG_AWS"),
    why="set IoT Hub's URI, user name and topics by hand; not automated yet",
)
