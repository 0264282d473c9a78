"""coreMQTT: found and reported; rewriting is left to a human for now."""

from __future__ import annotations

import re

from firmware_patches._scan_only import ScanOnlyRecipe

RECIPE = ScanOnlyRecipe(
    name="c_coremqtt",
    stack="c_coremqtt",
    suffixes=(".c", ".h"),
    marker=re.compile(r"core_mqtt|MQTT_Connect|clientcredential|democonfig|aws_iot_mqtt_client"),
    why="set IoT Hub's host, user name and topics in demo_config.h by hand; not automated yet",
)
