"""Reading a migration plan written by `iot-bridge plan`, for `iot-bridge run --plan`.

Like the inventory loader: the whole document is validated against the models and the
major schema version must be one this bridge writes, so a truncated, hand-edited or foreign
file is one clear `PlanFileError` naming the file, never a traceback.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import ValidationError

from bridge.errors import PlanFileError
from bridge.mapping.models import PLAN_SCHEMA_VERSION, AuthPlan, MigrationPlan

__all__ = ["load_plan", "parse_plan", "plan_auth"]


def load_plan(path: Path) -> MigrationPlan:
    """The migration plan at `path`, or a `PlanFileError` that says what is wrong with it."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PlanFileError(f"cannot read plan {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise PlanFileError(f"{path} is not a plan: not UTF-8 text (byte {exc.start})") from exc
    return parse_plan(text, source=str(path))


def parse_plan(text: str, *, source: str = "plan") -> MigrationPlan:
    """Parse and validate migration plan JSON of a major schema version this bridge writes."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PlanFileError(
            f"{source} is not valid JSON (line {exc.lineno}, column {exc.colno}); "
            "write it again with `iot-bridge plan`"
        ) from exc
    except ValueError as exc:  # an integer of more digits than Python converts
        raise PlanFileError(f"{source} is not a plan: a number has too many digits") from exc
    except RecursionError as exc:
        raise PlanFileError(f"{source} is not a plan: JSON nested too deeply") from exc
    if not isinstance(document, dict):
        raise PlanFileError(f"{source} is not a migration plan: expected a JSON object")
    version = str(document.get("schema_version", ""))
    known_major = PLAN_SCHEMA_VERSION.split(".", maxsplit=1)[0]
    if version.split(".", maxsplit=1)[0] != known_major:
        raise PlanFileError(
            f"{source} has plan schema version {version or 'none'!r}; this iot-bridge reads "
            f"major version {known_major} ({PLAN_SCHEMA_VERSION}); plan again with it"
        )
    try:
        return MigrationPlan.model_validate(document)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise PlanFileError(
            f"{source} does not match the migration plan schema: {where}: {first['msg']} "
            f"({exc.error_count()} errors)"
        ) from exc


def plan_auth(plan: MigrationPlan) -> dict[str, AuthPlan]:
    """Each planned device's authentication, by device id (devices without one left out)."""
    return {device.device_id: device.auth for device in plan.devices if device.auth}
