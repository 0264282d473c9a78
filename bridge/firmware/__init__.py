"""Firmware: find AWS IoT code in a device repository and rewrite it to IoT Hub.

A peer step: it uses `bridge.mapping` for the message properties the relay stamps, and
the recipes in `firmware_patches/` for each device stack; nothing else of the bridge.
"""

from __future__ import annotations

from bridge.firmware.models import FileReport, ScanReport, SkippedFile, TouchPoint
from bridge.firmware.patch import PatchOutcome, patch
from bridge.firmware.recipes import (
    DeviceIdSource,
    KeySource,
    PatchOptions,
    Recipe,
    load_recipes,
)
from bridge.firmware.scan import scan

__all__ = [
    "DeviceIdSource",
    "FileReport",
    "KeySource",
    "PatchOptions",
    "PatchOutcome",
    "Recipe",
    "ScanReport",
    "SkippedFile",
    "TouchPoint",
    "load_recipes",
    "patch",
    "scan",
]
