"""Reading an inventory for planning, refusing versions and documents it cannot trust."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import ValidationError

from bridge.errors import PlanError
from bridge.inventory import SCHEMA_VERSION, Inventory

__all__ = ["load_inventory", "parse_inventory"]


def load_inventory(path: Path) -> Inventory:
    """The inventory at `path`, or a `PlanError` that says what is wrong with it."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PlanError(f"cannot read inventory {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise PlanError(f"{path} is not an inventory: not UTF-8 text (byte {exc.start})") from exc
    return parse_inventory(text, source=str(path))


def parse_inventory(text: str, *, source: str = "inventory") -> Inventory:
    """Parse and validate inventory JSON; the major schema version must be one we know."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PlanError(
            f"{source} is not valid JSON (line {exc.lineno}, column {exc.colno})"
        ) from exc
    except ValueError as exc:  # an integer of more digits than Python converts
        raise PlanError(f"{source} is not an inventory: a number has too many digits") from exc
    except RecursionError as exc:
        raise PlanError(f"{source} is not an inventory: JSON nested too deeply") from exc
    if not isinstance(document, dict):
        raise PlanError(f"{source} is not an inventory: expected a JSON object")
    version = str(document.get("schema_version", ""))
    known_major = SCHEMA_VERSION.split(".", maxsplit=1)[0]
    if version.split(".", maxsplit=1)[0] != known_major:
        raise PlanError(
            f"{source} has schema version {version or 'none'!r}; this iot-bridge reads "
            f"major version {known_major} ({SCHEMA_VERSION}); use a matching iot-bridge"
        )
    try:
        return Inventory.model_validate(document)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise PlanError(
            f"{source} does not match the inventory schema: {where}: {first['msg']} "
            f"({exc.error_count()} errors)"
        ) from exc
