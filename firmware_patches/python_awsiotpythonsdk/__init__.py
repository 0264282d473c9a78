"""AWSIoTPythonSDK v1: found and reported; rewriting is left to a human for now."""

from __future__ import annotations

import re

from firmware_patches._scan_only import ScanOnlyRecipe

RECIPE = ScanOnlyRecipe(
    name="python_awsiotpythonsdk",
    stack="python_awsiotpythonsdk",
    suffixes=(".py",),
    marker=re.compile(r"AWSIoTPythonSDK"),
    why="rewrite not automated yet; port to azure-iot-device by hand",
)
