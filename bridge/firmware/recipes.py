"""The recipe protocol, and discovery of the recipes in `firmware_patches/`.

A recipe knows one device stack: it detects its files, lists their AWS IoT touch points,
and rewrites them to IoT Hub. A new stack is a new subpackage of `firmware_patches`
exposing `RECIPE`; the engine never changes for it.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from functools import cache
from typing import Literal, Protocol, runtime_checkable

from bridge.errors import BridgeError
from bridge.firmware.models import TouchPoint

__all__ = [
    "IOTHUB_API_VERSION",
    "IOTHUB_MAX_KEEP_ALIVE",
    "MAX_REWRITE_BYTES",
    "DeviceIdSource",
    "KeySource",
    "PatchOptions",
    "PatchRefusedError",
    "Recipe",
    "load_recipes",
]

IOTHUB_API_VERSION = "2021-04-12"
IOTHUB_MAX_KEEP_ALIVE = 1177  # seconds; IoT Hub closes idle connections after 29.45 min
# Above this a file that mentions AWS IoT is reported, not parsed: LibCST takes about
# 35 s on a 2 MB Python file, and generated or amalgamated sources are no place for
# a mechanical rewrite anyway.
MAX_REWRITE_BYTES = 512 * 1024
RECIPES_PACKAGE = "firmware_patches"


class PatchRefusedError(BridgeError):
    """Raised by a recipe when a file's shape is one it cannot rewrite mechanically."""


@dataclass(frozen=True)
class DeviceIdSource:
    """Where patched code takes its IoT Hub device id from (`--device-id-from`)."""

    mode: Literal["client-id", "env", "literal"] = "client-id"
    value: str = ""

    @classmethod
    def parse(cls, text: str) -> DeviceIdSource:
        """`client-id`, `env:NAME` or `literal:ID`."""
        if text == "client-id":
            return cls()
        kind, _, value = text.partition(":")
        if kind == "env" and value:
            return cls("env", value)
        if kind == "literal" and value:
            return cls("literal", value)
        raise ValueError(
            f"--device-id-from must be client-id, env:NAME or literal:ID, not {text!r}"
        )


@dataclass(frozen=True)
class KeySource:
    """Where a device reads its SAS device key at run time (`--sas-key-from`).

    The key is provisioned at cutover; it never enters the repository or the patch.
    """

    mode: Literal["env", "file"] = "env"
    value: str = "IOTHUB_DEVICE_KEY"

    @classmethod
    def parse(cls, text: str) -> KeySource:
        """`env:NAME` or `file:PATH`."""
        kind, _, value = text.partition(":")
        if kind == "env" and value:
            return cls("env", value)
        if kind == "file" and value:
            return cls("file", value)
        raise ValueError(f"--sas-key-from must be env:NAME or file:PATH, not {text!r}")


@dataclass(frozen=True)
class PatchOptions:
    """What every recipe needs to know to rewrite a file."""

    hub: str
    device_id: DeviceIdSource = DeviceIdSource()
    # x509: the device keeps its certificate (thumbprint auth); sas: a device key
    # provisioned at cutover, read from `sas_key`. A recipe that cannot do SAS for its
    # stack raises PatchRefusedError saying why.
    auth: Literal["x509", "sas"] = "x509"
    sas_key: KeySource = KeySource()
    # Files larger than this are reported as needing a human instead of parsed.
    max_rewrite_bytes: int = MAX_REWRITE_BYTES
    # The other sources compiled with this file as one translation unit (the other
    # `.ino` files of an Arduino sketch folder, which the IDE concatenates): read for
    # definitions, clients and ids, never edited through this file. Set by the engine.
    unit: tuple[str, ...] = ()
    # The local headers a C/C++ file includes (`#include "secrets.h"`, found beside it or
    # in a PlatformIO `include/` folder): read for the values of the names they define,
    # never edited through this file. Set by the engine.
    headers: tuple[str, ...] = ()


@runtime_checkable
class Recipe(Protocol):
    """One device stack's detection, scan and rewrite."""

    name: str
    stack: str

    def detect(self, path: str, text: str) -> bool:
        """Whether the file at relative `path` belongs to this stack and talks to AWS IoT."""
        ...

    def scan(self, path: str, text: str) -> list[TouchPoint]:
        """Every AWS IoT touch point in the file, with the verdict the patch gives it."""
        ...

    def patch(self, path: str, text: str, options: PatchOptions) -> str | None:
        """The rewritten file, None when nothing changes; PatchRefusedError when it cannot."""
        ...


@cache
def load_recipes() -> tuple[Recipe, ...]:
    """Every recipe in `firmware_patches`, in name order; generic ones last."""
    package = importlib.import_module(RECIPES_PACKAGE)
    found: list[Recipe] = []
    for module in pkgutil.iter_modules(package.__path__):
        if not module.ispkg or module.name.startswith("_"):
            continue
        recipe = importlib.import_module(f"{RECIPES_PACKAGE}.{module.name}").RECIPE
        if not isinstance(recipe, Recipe):
            raise TypeError(f"{module.name}.RECIPE does not implement the Recipe protocol")
        found.append(recipe)
    return tuple(sorted(found, key=lambda recipe: (recipe.stack == "generic", recipe.name)))
