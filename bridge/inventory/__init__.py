"""The AWS IoT estate as `iot-bridge discover` finds it: a versioned, schema-checked document."""

from bridge.inventory.models import SCHEMA_VERSION, Inventory

__all__ = ["SCHEMA_VERSION", "Inventory"]
