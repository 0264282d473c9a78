import pytest

from bridge_sim.stack import sim_stack
from tests.core.conftest import postgres_database, store_dsn

__all__ = ["postgres_database", "store_dsn"]


@pytest.fixture
async def stack(tmp_path):
    """Both stand-ins, fresh for each test, under the test's own directory."""
    async with sim_stack(tmp_path / "sim") as running:
        yield running
