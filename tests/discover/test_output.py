from pathlib import Path

from bridge.discover.output import write_inventory
from bridge.inventory.models import Inventory


def test_streamed_inventory_is_what_pydantic_would_write(tmp_path: Path) -> None:
    inventory = Inventory.model_validate(
        {
            "generated_at": "2026-01-01T00:00:00Z",
            "region": "eu-west-1",
            "fleet_indexing": True,
            "things": [
                {
                    "name": "capteur-é",
                    "attributes": {"site": "Zürich", "quote": 'say "hi"\n'},
                    "shadows": [
                        {
                            "name": None,
                            "version": 3,
                            "desired": {"a": [1, 2.5, None]},
                            "size_bytes": 9,
                        },
                        {"name": "config", "version": 1, "reported": {}, "size_bytes": 2},
                    ],
                },
                {"name": "bare"},
            ],
            "thing_groups": [{"name": "g", "path": ["g"]}],
            "policies": [{"name": "p", "document": {"Statement": []}}],
            "findings": [{"severity": "info", "code": "X", "message": "m"}],
        }
    )
    path = tmp_path / "inventory.json"
    write_inventory(inventory, path)
    assert path.read_text(encoding="utf-8") == inventory.model_dump_json(indent=2, by_alias=True)
    assert Inventory.model_validate_json(path.read_text()) == inventory
    assert not (tmp_path / "inventory.json.tmp").exists()
