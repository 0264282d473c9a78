"""Zephyr MQTT: found and reported; rewriting is left to a human for now."""

from __future__ import annotations

import re

from firmware_patches._scan_only import ScanOnlyRecipe

RECIPE = ScanOnlyRecipe(
    name="c_zephyr_mqtt",
    stack="c_zephyr_mqtt",
    suffixes=(".c", ".h"),
    marker=re.compile(r"zephyr/net/mqtt\.h|net/mqtt\.h|mqtt_client_init"),
    why="set IoT Hub's host, user name and topics by hand; not automated yet",
)
