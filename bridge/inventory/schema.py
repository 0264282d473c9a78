"""The published JSON Schema of the inventory, generated from the models."""

from __future__ import annotations

import json
from pathlib import Path

from bridge.inventory.models import SCHEMA_VERSION, Inventory

__all__ = ["SCHEMA_PATH", "inventory_schema"]

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "schemas" / "inventory.schema.json"


def inventory_schema() -> str:
    """The schema as the repository publishes it (stable key order, trailing newline)."""
    schema = Inventory.model_json_schema()
    schema["$id"] = f"https://iot-bridge.dev/schemas/inventory/{SCHEMA_VERSION}"
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    SCHEMA_PATH.write_text(inventory_schema())
