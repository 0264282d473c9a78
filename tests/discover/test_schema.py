import json

import jsonschema
import pytest

from bridge.inventory.models import Inventory
from bridge.inventory.schema import SCHEMA_PATH, inventory_schema


def test_published_schema_matches_the_models() -> None:
    assert SCHEMA_PATH.read_text() == inventory_schema(), (
        "schemas/inventory.schema.json is stale: run `python -m bridge.inventory.schema`"
    )


def test_an_inventory_validates_against_the_published_schema() -> None:
    inventory = Inventory.model_validate(
        {
            "generated_at": "2026-01-01T00:00:00Z",
            "region": "us-east-1",
            "things": [{"name": "t1", "shadows": [{"name": None, "version": 3, "size_bytes": 2}]}],
            "thing_groups": [{"name": "g", "path": ["g"]}],
        }
    )
    document = json.loads(inventory.model_dump_json())
    jsonschema.validate(document, json.loads(SCHEMA_PATH.read_text()))
    document["things"][0]["unexpected"] = 1
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(document, json.loads(SCHEMA_PATH.read_text()))
