"""dotenv files for the stand-ins' settings."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bridge.files import write_atomically

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

__all__ = ["is_secret", "write_env_file"]


def is_secret(name: str) -> bool:
    """Whether a setting holds a key (secret keys and connection strings): never shown."""
    return any(marker in name for marker in ("SECRET", "CONNECTION_STRING", "PASSWORD"))


def _quote(value: str) -> str:
    if value and all(c.isalnum() or c in "-_./:@+,%" for c in value):
        return value
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def write_env_file(path: Path, values: Mapping[str, str], *, header: str = "") -> None:
    """Write `values` as KEY=VALUE lines, readable only by the owner (it holds keys)."""
    lines = [f"# {line}" for line in header.splitlines()]
    lines += [f"{key}={_quote(value)}" for key, value in values.items()]
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, "\n".join(lines) + "\n", mode=0o600)
