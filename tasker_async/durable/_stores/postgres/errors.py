"""Which errors of the server or the driver mean "the engine is unreachable", and the error the store raises then."""

from __future__ import annotations

from urllib.parse import urlsplit

import asyncpg

from ..._model.errors import StoreUnavailableError

__all__ = ("UNAVAILABLE", "describe", "unavailable")

# The server is down, restarting, refusing connections or ended the session (08, 53, 57 classes), a
# transaction was rolled back to break a deadlock or a serialization conflict (40: try again), or the socket
# failed. A broken constraint or a bad statement is a bug, and stays what it is.
UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError,  # refused, reset, unreachable; TimeoutError (a connect that did not answer) is one too
    asyncpg.PostgresConnectionError,
    asyncpg.InsufficientResourcesError,
    asyncpg.OperatorInterventionError,
    asyncpg.TransactionRollbackError,
    asyncpg.InterfaceError,  # "connection is closed": the session ended under the pool
    # A connection whose operation was cut short (its socket broke, or its caller was cancelled mid-reply) is
    # left unusable; the store closes it and the pool opens a fresh one.
    asyncpg.InternalClientError,
)


def describe(dsn: str) -> str:
    """Where a DSN points, without its password: ``host:port/database``."""
    parts = urlsplit(dsn)
    host = parts.hostname or "localhost"
    port = f":{parts.port}" if parts.port else ""
    database = parts.path.lstrip("/") or "(default database)"
    return f"{host}{port}/{database}"


def unavailable(where: str, exc: BaseException) -> StoreUnavailableError:
    """The error an operation raises when the server at ``where`` could not be used."""
    reason = str(exc) or type(exc).__name__
    return StoreUnavailableError(f"PostgreSQL store at {where} is unavailable: {reason} [{type(exc).__name__}]")
