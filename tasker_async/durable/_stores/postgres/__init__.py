"""The PostgreSQL store (needs the ``postgres`` extra: asyncpg)."""

try:
    import asyncpg  # noqa: F401 -- only to tell a missing extra apart from any other import error
except ImportError as exc:  # pragma: no cover - depends on what is installed
    raise ImportError(
        "PostgresStore needs asyncpg: install the postgres extra (pip install 'tasker-async[postgres]')"
    ) from exc

from .store import PostgresStore

__all__ = ("PostgresStore",)
