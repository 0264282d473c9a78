"""Paths and small helpers shared by the deploy tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from bridge.config import SECRET_SETTINGS, SECRETS_DIR_ENV, CloudSettings, Settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


def load_yaml_documents(path: Path) -> list[Any]:
    """Every document in a YAML file, empty ones dropped."""
    with path.open() as handle:
        return [doc for doc in yaml.safe_load_all(handle) if doc is not None]


def setting_names() -> set[str]:
    """Every environment name the daemon reads: BRIDGE_<SECTION>__<FIELD> and cloud names."""
    names = set(CloudSettings.model_fields)
    prefix = Settings.model_config.get("env_prefix", "")
    delimiter = Settings.model_config.get("env_nested_delimiter", "__")
    for name, field in Settings.model_fields.items():
        section = field.annotation
        nested = getattr(section, "model_fields", None)
        if nested is None:
            names.add(f"{prefix}{name}".upper())
            continue
        names.update(f"{prefix}{name}{delimiter}{sub}".upper() for sub in nested)
    names.add(SECRETS_DIR_ENV)
    names.update(f"{name}_FILE" for secrets in SECRET_SETTINGS.values() for name in secrets)
    return names


def secret_file_names() -> set[str]:
    """The settings that may be files in the secrets directory, named like this."""
    return {name for secrets in SECRET_SETTINGS.values() for name in secrets}
