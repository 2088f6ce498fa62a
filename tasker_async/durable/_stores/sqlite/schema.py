"""The SQLite store's file: connection settings, tables and indexes, and the schema version they carry."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ("SCHEMA_VERSION", "SchemaError", "configure", "ensure_schema", "stored_version", "write")

# Raised whenever the tables below change shape; a file made by another version is refused, not guessed at.
SCHEMA_VERSION = 2

_RUN_TABLES = (
    # Workflow runs (schema 2): a run, its steps' statuses (and a plain step's result), a mapped step's
    # items (and the elements of a list some step maps over). ``run_id``, ``step``, ``item`` on jobs name
    # the run step a job belongs to.
    """
    CREATE TABLE IF NOT EXISTS runs (
        id TEXT PRIMARY KEY,
        workflow TEXT NOT NULL,
        key TEXT,
        state TEXT NOT NULL,
        inputs BLOB NOT NULL,
        plan TEXT NOT NULL,
        created_at REAL NOT NULL,
        finished_at REAL,
        result_ttl REAL NOT NULL
    )
    """,
    "CREATE INDEX IF NOT EXISTS runs_key ON runs (key) WHERE key IS NOT NULL",
    """
    CREATE TABLE IF NOT EXISTS run_steps (
        run_id TEXT NOT NULL,
        step TEXT NOT NULL,
        state TEXT NOT NULL,
        parents_left INTEGER NOT NULL,
        items INTEGER,
        items_done INTEGER NOT NULL,
        items_failed INTEGER NOT NULL,
        attempts INTEGER NOT NULL,
        error_type TEXT,
        error_message TEXT,
        error_traceback TEXT,
        started_at REAL,
        finished_at REAL,
        result BLOB,
        PRIMARY KEY (run_id, step)
    ) WITHOUT ROWID
    """,
    """
    CREATE TABLE IF NOT EXISTS run_items (
        run_id TEXT NOT NULL,
        step TEXT NOT NULL,
        item INTEGER NOT NULL,
        state TEXT NOT NULL,
        result BLOB,
        PRIMARY KEY (run_id, step, item)
    ) WITHOUT ROWID
    """,
    "CREATE INDEX IF NOT EXISTS jobs_run ON jobs (run_id, step) WHERE run_id IS NOT NULL",
)

_TABLES = (
    """
    CREATE TABLE IF NOT EXISTS meta (
        name TEXT PRIMARY KEY,
        value TEXT NOT NULL
    )
    """,
    # ``state`` is queued, running, succeeded, failed, cancelled or dead: a queued job whose ``ready_at`` is still
    # ahead shows as delayed. ``seq`` (the rowid) is the submission order that breaks ties in the ready order.
    """
    CREATE TABLE IF NOT EXISTS jobs (
        seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        name TEXT NOT NULL,
        queue TEXT NOT NULL,
        payload BLOB NOT NULL,
        priority INTEGER NOT NULL,
        key TEXT,
        state TEXT NOT NULL,
        ready_at REAL NOT NULL,
        lease REAL NOT NULL,
        lease_until REAL,
        token TEXT,
        consumer TEXT,
        deliveries INTEGER NOT NULL DEFAULT 0,
        max_deliveries INTEGER NOT NULL,
        once INTEGER NOT NULL,
        result_ttl REAL NOT NULL,
        created_at REAL NOT NULL,
        started_at REAL,
        finished_at REAL,
        result BLOB,
        error_type TEXT,
        error_message TEXT,
        error_traceback TEXT,
        cancel_requested INTEGER NOT NULL DEFAULT 0,
        run_id TEXT,
        step TEXT,
        item INTEGER
    )
    """,
    # Claims read one lane of one queue in ready order (the rowid, seq, ends every index entry).
    "CREATE INDEX IF NOT EXISTS jobs_ready ON jobs (queue, priority, ready_at) WHERE state = 'queued'",
    # Reclaim looks for expired leases only among running jobs.
    "CREATE INDEX IF NOT EXISTS jobs_lease ON jobs (lease_until) WHERE state = 'running'",
    "CREATE INDEX IF NOT EXISTS jobs_key ON jobs (key) WHERE key IS NOT NULL",
    # Stats count a queue's running and dead jobs; purge looks only at finished ones.
    "CREATE INDEX IF NOT EXISTS jobs_state ON jobs (state, queue)",
    *_RUN_TABLES,
    """
    CREATE TABLE IF NOT EXISTS consumers (
        id TEXT PRIMARY KEY,
        host TEXT NOT NULL,
        pid INTEGER NOT NULL,
        started_at REAL NOT NULL,
        capacity INTEGER NOT NULL,
        running INTEGER NOT NULL,
        heartbeat_at REAL NOT NULL,
        queues TEXT NOT NULL
    )
    """,
)


@contextmanager
def write(conn: sqlite3.Connection) -> Iterator[None]:
    """One write transaction: ``BEGIN IMMEDIATE`` takes the file's write lock up front.

    Taking it at the start (not at the first write) means a transaction never has to upgrade a read lock,
    which SQLite refuses without waiting while another connection writes; the busy timeout covers the wait.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


# What takes a file of an older version to this one, in one transaction each (the jobs are kept).
_MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        "ALTER TABLE jobs ADD COLUMN run_id TEXT",
        "ALTER TABLE jobs ADD COLUMN step TEXT",
        "ALTER TABLE jobs ADD COLUMN item INTEGER",
        *_RUN_TABLES,
    ),
}


class SchemaError(Exception):
    """The file holds tables of another schema version."""


def configure(conn: sqlite3.Connection) -> None:
    """Set the connection up: WAL, and commits that reach the disk before they return.

    WAL lets readers go on while one connection writes, so several processes share the file.
    ``synchronous=FULL`` syncs the log at every commit: a job is durable when ``enqueue`` returns, across a
    power loss too. (``NORMAL`` in WAL survives a crash of the process, not of the machine.)
    """
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        raise sqlite3.OperationalError(f"the file cannot use write-ahead logging (journal mode {mode})")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA foreign_keys = OFF")


def stored_version(conn: sqlite3.Connection) -> int | None:
    """The schema version the file's tables carry; None when it has none (a new or foreign file)."""
    exists = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").fetchone()
    if exists is None:
        return None
    row = conn.execute("SELECT value FROM meta WHERE name = 'schema_version'").fetchone()
    return None if row is None else int(row[0])


def ensure_schema(conn: sqlite3.Connection) -> None:
    """Create the tables on first use; refuse a file whose tables another schema version made.

    A file already set up is only read, so opening a store does not wait for another process's write.
    """
    version = stored_version(conn)
    if version is None:
        with write(conn):
            for statement in _TABLES:
                conn.execute(statement)
            conn.execute(
                "INSERT OR IGNORE INTO meta (name, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
            )
        version = stored_version(conn)
    while version in _MIGRATIONS:
        version = _migrate(conn, version)
    if version != SCHEMA_VERSION:
        raise SchemaError(
            f"its tables have schema version {version}, and this version of tasker_async reads {SCHEMA_VERSION}"
        )


def _migrate(conn: sqlite3.Connection, version: int) -> int:
    """Take the file from ``version`` to the next, unless another connection did meanwhile; the new version."""
    with write(conn):
        # Read again under the write lock: two processes opening an old file migrate it once.
        if stored_version(conn) == version:
            for statement in _MIGRATIONS[version]:
                conn.execute(statement)
            conn.execute("UPDATE meta SET value = ? WHERE name = 'schema_version'", (str(version + 1),))
    found = stored_version(conn)
    assert found is not None
    return found
