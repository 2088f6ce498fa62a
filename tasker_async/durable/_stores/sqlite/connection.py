"""Opening the SQLite store's file, and the errors that name it when it cannot be used."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from ..._model.errors import StoreUnavailableError
from .schema import SchemaError, configure, ensure_schema, stored_version

__all__ = ("open_connection", "unavailable")


def _reason(exc: sqlite3.Error, busy_timeout: float) -> str:
    """What an error of SQLite means for the user of the file."""
    name = getattr(exc, "sqlite_errorname", "")
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return f"the file is locked: another connection held it longer than busy_timeout ({busy_timeout:g} s)"
    if name.startswith("SQLITE_READONLY"):
        return "the file (or its directory) is read-only"
    if name.startswith("SQLITE_NOTADB"):
        return "the file is not a SQLite database"
    if name.startswith("SQLITE_CANTOPEN"):
        return "the file cannot be opened (check that its directory exists and may be written)"
    return str(exc)


def unavailable(path: str, exc: sqlite3.Error, busy_timeout: float) -> StoreUnavailableError:
    """The error an operation raises when SQLite failed on the file at ``path``."""
    return StoreUnavailableError(f"SQLite store at {path} is unavailable: {_reason(exc, busy_timeout)} [{exc}]")


def _path_problem(path: Path, create: bool) -> str | None:
    """What keeps the store from using ``path``, as far as the file system tells before SQLite tries."""
    directory = path.parent
    if not directory.exists():
        return f"directory {directory} does not exist"
    if not directory.is_dir():
        return f"{directory} is not a directory"
    if path.is_dir():
        return "it is a directory"
    if not create and not path.exists():
        return "the file does not exist (there is no store there)"
    if path.exists() and not os.access(path, os.R_OK | os.W_OK):
        return "the file is read-only (the store writes to it)"
    if not os.access(directory, os.W_OK | os.X_OK):
        return f"directory {directory} is read-only (the store writes its -wal and -shm files beside the database)"
    return None


def open_connection(path: str, busy_timeout: float, *, create: bool = True) -> tuple[sqlite3.Connection, int]:
    """Open the file at ``path`` (an absolute path), creating it and its tables on first use if ``create``.

    Returns the connection and its ``data_version``. The connection is in autocommit mode (every
    transaction is explicit) and may move between threads: the store never lets two use it at once.

    Raises:
        StoreUnavailableError: the file cannot be used, or (without ``create``) holds no store; the
            message names it and says why.
    """
    problem = _path_problem(Path(path), create)
    if problem is not None:
        raise StoreUnavailableError(f"cannot open SQLite store at {path}: {problem}")
    # Without create, SQLite itself must not make the file either: open it read-write, never create.
    target = path if create else f"{Path(path).as_uri()}?mode=rw"
    try:
        conn = sqlite3.connect(
            target, timeout=busy_timeout, isolation_level=None, check_same_thread=False, uri=not create
        )
    except sqlite3.Error as exc:
        raise StoreUnavailableError(f"cannot open SQLite store at {path}: {_reason(exc, busy_timeout)}") from exc
    try:
        if not create and stored_version(conn) is None:
            # Checked before ``configure``, which would switch the file to write-ahead logging.
            raise SchemaError("the file holds no tasker_async store (none of its tables)")
        configure(conn)
        ensure_schema(conn)
        version = int(conn.execute("PRAGMA data_version").fetchone()[0])
    except (sqlite3.Error, SchemaError) as exc:
        conn.close()
        reason = str(exc) if isinstance(exc, SchemaError) else _reason(exc, busy_timeout)
        raise StoreUnavailableError(f"cannot open SQLite store at {path}: {reason}") from exc
    except BaseException:
        conn.close()
        raise
    return conn, version
