from tests.core.conftest import postgres_database, store, store_dsn

__all__ = ["postgres_database", "store", "store_dsn"]
