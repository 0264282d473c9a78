"""Node: found and reported; rewriting is left to a human for now."""

from __future__ import annotations

import re

from firmware_patches._scan_only import ScanOnlyRecipe

RECIPE = ScanOnlyRecipe(
    name="node_aws_iot_device_sdk",
    stack="node_aws_iot_device_sdk",
    suffixes=(".js", ".mjs", ".cjs", ".ts"),
    marker=re.compile(r"aws-iot-device-sdk|aws-crt|awsIot\.|iot\.mqtt"),
    why="rewrite to azure-iot-device + azure-iot-device-mqtt by hand; not automated yet",
)
