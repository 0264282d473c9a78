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


# Inside double quotes the dotenv reader decodes these escapes; CR and LF are escaped
# because the reader's universal newlines would turn a raw CR into LF.
_ESCAPES = str.maketrans({"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r"})


def _quote(key: str, value: str) -> str:
    if value and all(c.isalnum() or c in "-_./:@+,%" for c in value):
        return value
    if "${" in value:
        # The reader expands ${NAME} in every value, quoted or not, and has no escape for it.
        raise ValueError(f"{key}: a value containing '${{' cannot be written to a dotenv file")
    if "\x00" in value:
        raise ValueError(f"{key}: a value containing NUL cannot be an environment variable")
    return '"' + value.translate(_ESCAPES) + '"'


def write_env_file(path: Path, values: Mapping[str, str], *, header: str = "") -> None:
    """Write `values` as KEY=VALUE lines, readable only by the owner (it holds keys).

    Raises ValueError for a value the dotenv reader could not give back unchanged.
    """
    lines = [f"# {line}" for line in header.splitlines()]
    lines += [f"{key}={_quote(key, value)}" for key, value in values.items()]
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, "\n".join(lines) + "\n", mode=0o600)
