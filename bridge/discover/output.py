"""Write an inventory to disk one item at a time.

`Inventory.model_dump_json` builds the whole document as one string (hundreds of MB for
100,000 things, twice over while pydantic hands it to Python). Writing field by field and
list item by item keeps only one item's JSON in memory; the bytes are the same as
`model_dump_json(indent=2, by_alias=True)` would give.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from pydantic import BaseModel

from bridge.files import open_atomically

if TYPE_CHECKING:
    from pathlib import Path

    from bridge.inventory.models import Inventory

__all__ = ["write_inventory"]

_INDENT = "  "


def _item(model: BaseModel) -> str:
    text = model.model_dump_json(indent=2, by_alias=True)
    return text.replace("\n", "\n" + _INDENT * 2)


def write_inventory(inventory: Inventory, path: Path) -> None:
    """Write `inventory` to `path` atomically (a crash leaves no half-written file)."""
    fields = type(inventory).model_fields
    with open_atomically(path) as out:
        out.write("{")
        for position, (name, info) in enumerate(fields.items()):
            key = json.dumps(info.alias or name)
            out.write(("," if position else "") + f"\n{_INDENT}{key}: ")
            value = getattr(inventory, name)
            if isinstance(value, list) and value:
                out.write("[")
                for index, item in enumerate(value):
                    out.write(("," if index else "") + f"\n{_INDENT * 2}{_item(item)}")
                out.write(f"\n{_INDENT}]")
            else:
                # A scalar or an empty list: small, so pydantic serialises the field alone.
                whole = inventory.model_dump(mode="json", include={name}, by_alias=True)
                out.write(json.dumps(whole[info.alias or name], indent=2, ensure_ascii=False))
        out.write("\n}")
