"""The PostgreSQL store's tables, created on first use under an advisory lock, and the version they carry."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, TypeAlias

if TYPE_CHECKING:
    import asyncpg
    from asyncpg.pool import PoolConnectionProxy

    # A connection of its own, or one of the pool's.
    Conn: TypeAlias = asyncpg.Connection[Any] | PoolConnectionProxy[Any]

__all__ = ("SCHEMA_VERSION", "SchemaError", "Names", "ensure_schema")

# Raised whenever the tables below change shape; a schema made by another version is refused, not guessed at.
SCHEMA_VERSION = 1

# Channel names are identifiers: at most 63 bytes, of which the schema name takes the most.
_SCHEMA_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,50}")


class SchemaError(Exception):
    """The schema holds tables of another schema version."""


class Names:
    """The qualified names the store's statements use, for one schema name.

    Args:
        schema: a plain identifier (letters, digits, underscores; not starting with a digit).

    Raises:
        ValueError: ``schema`` is not such a name.
    """

    __slots__ = ("consumers", "done", "jobs", "meta", "ready", "schema")

    def __init__(self, schema: str) -> None:
        if not isinstance(schema, str) or _SCHEMA_NAME.fullmatch(schema) is None:
            raise ValueError(f"schema must be a plain identifier of at most 51 characters, got {schema!r}")
        self.schema = schema
        self.jobs = f'"{schema}".jobs'
        self.consumers = f'"{schema}".consumers'
        self.meta = f'"{schema}".meta'
        # NOTIFY channels: enqueues and requeues (payload: the queue), and finished jobs (payload: the id).
        self.ready = f"{schema}_ready"
        self.done = f"{schema}_done"


def _jobs_table(jobs: str) -> str:
    # ``state`` is queued, running, succeeded, failed, cancelled or dead: a queued job whose ``ready_at`` is
    # still ahead shows as delayed. ``seq`` is the submission order that breaks ties in the ready order.
    return f"""
        CREATE TABLE IF NOT EXISTS {jobs} (
            seq bigint GENERATED ALWAYS AS IDENTITY,
            id text PRIMARY KEY,
            name text NOT NULL,
            queue text NOT NULL,
            payload bytea NOT NULL,
            priority boolean NOT NULL,
            key text,
            state text NOT NULL,
            ready_at double precision NOT NULL,
            lease double precision NOT NULL,
            lease_until double precision,
            token text,
            consumer text,
            deliveries integer NOT NULL DEFAULT 0,
            max_deliveries integer NOT NULL,
            once boolean NOT NULL,
            result_ttl double precision NOT NULL,
            created_at double precision NOT NULL,
            started_at double precision,
            finished_at double precision,
            result bytea,
            error_type text,
            error_message text,
            error_traceback text,
            cancel_requested boolean NOT NULL DEFAULT false
        )
        """


def _tables(names: Names) -> tuple[str, ...]:
    jobs, schema = names.jobs, names.schema
    return (
        f'CREATE SCHEMA IF NOT EXISTS "{schema}"',
        f"CREATE TABLE IF NOT EXISTS {names.meta} (name text PRIMARY KEY, value text NOT NULL)",
        _jobs_table(names.jobs),
        # Claims read the queued jobs of a queue in the order they are taken.
        f"CREATE INDEX IF NOT EXISTS jobs_ready ON {jobs} (queue, priority DESC, ready_at, seq) WHERE state = 'queued'",
        # Reclaim looks for expired leases only among running jobs.
        f"CREATE INDEX IF NOT EXISTS jobs_lease ON {jobs} (lease_until) WHERE state = 'running'",
        # One unfinished job per key: the engine itself refuses a second, whatever the callers do.
        f"CREATE UNIQUE INDEX IF NOT EXISTS jobs_key_open ON {jobs} (key)"
        " WHERE key IS NOT NULL AND state IN ('queued', 'running', 'dead')",
        f"CREATE INDEX IF NOT EXISTS jobs_key ON {jobs} (key, seq) WHERE key IS NOT NULL",
        # Stats count a queue's running and dead jobs; purge looks only at finished ones.
        f"CREATE INDEX IF NOT EXISTS jobs_state ON {jobs} (state, queue)",
        f"CREATE INDEX IF NOT EXISTS jobs_finished ON {jobs} (finished_at)"
        " WHERE state IN ('succeeded', 'failed', 'cancelled')",
        f"""
        CREATE TABLE IF NOT EXISTS {names.consumers} (
            id text PRIMARY KEY,
            host text NOT NULL,
            pid integer NOT NULL,
            started_at double precision NOT NULL,
            capacity integer NOT NULL,
            running integer NOT NULL,
            heartbeat_at double precision NOT NULL,
            queues text NOT NULL
        )
        """,
    )


async def _stored_version(conn: Conn, names: Names) -> int | None:
    exists = await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", names.meta)
    if not exists:
        return None
    value = await conn.fetchval(f"SELECT value FROM {names.meta} WHERE name = 'schema_version'")
    return None if value is None else int(value)


async def ensure_schema(conn: Conn, names: Names) -> None:
    """Create the schema and its tables on first use; refuse a schema another schema version made.

    Stores opening at once on an empty database take turns on an advisory lock (per schema name), so the
    tables are created once; a schema already set up is only read.

    Raises:
        SchemaError: the tables carry another schema version.
    """
    version = await _stored_version(conn, names)
    if version is None:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"tasker_async.schema.{names.schema}")
            if await _stored_version(conn, names) is None:
                for statement in _tables(names):
                    await conn.execute(statement)
                await conn.execute(
                    f"INSERT INTO {names.meta} (name, value) VALUES ('schema_version', $1) ON CONFLICT DO NOTHING",
                    str(SCHEMA_VERSION),
                )
        version = await _stored_version(conn, names)
    if version != SCHEMA_VERSION:
        raise SchemaError(
            f"schema {names.schema!r} has schema version {version}, and this version of tasker_async reads"
            f" {SCHEMA_VERSION}"
        )
