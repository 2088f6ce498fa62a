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

# Raised whenever the tables below change shape. An older schema is migrated (see _MIGRATIONS); a newer one, made
# by a later release, is refused, not guessed at.
SCHEMA_VERSION = 3

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

    __slots__ = (
        "cancel",
        "consumers",
        "done",
        "jobs",
        "later",
        "meta",
        "ready",
        "run_items",
        "run_steps",
        "runs",
        "schema",
    )

    def __init__(self, schema: str) -> None:
        if not isinstance(schema, str) or _SCHEMA_NAME.fullmatch(schema) is None:
            raise ValueError(f"schema must be a plain identifier of at most 51 characters, got {schema!r}")
        self.schema = schema
        self.jobs = f'"{schema}".jobs'
        self.consumers = f'"{schema}".consumers'
        self.meta = f'"{schema}".meta'
        self.runs = f'"{schema}".runs'
        self.run_steps = f'"{schema}".run_steps'
        self.run_items = f'"{schema}".run_items'
        # NOTIFY channels: jobs ready now (payload: the queue), delayed jobs added (payload: the queue),
        # finished jobs and runs (payload: the ids), and running jobs asked to be cancelled (payload: the id of
        # the consumer holding one, cancel_requests.py).
        self.ready = f"{schema}_ready"
        self.later = f"{schema}_later"
        self.done = f"{schema}_done"
        self.cancel = f"{schema}_cancel"


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
            cancel_requested boolean NOT NULL DEFAULT false,
            run_id text,
            step text,
            item integer
        )
        """


# Stats count a queue's running and dead jobs. Partial: a queued or finished row is not in it, so a claim or an
# outcome does not write to it, and the planner takes jobs_ready for claims (an index over every state led it to
# sort a whole queue's backlog on each claim).
_ACTIVE_INDEX = "CREATE INDEX IF NOT EXISTS jobs_active ON {jobs} (queue, state) WHERE state IN ('running', 'dead')"

# Workflow runs: a run's row (its plans as JSON text), one row per step (its ``StepStatus``, times and result)
# and one per item of a mapped step or element of a list some step maps over. A run step's job carries its
# ``StepRef`` in ``run_id, step, item`` (NULL for every other job); the index is partial, so plain jobs never
# write to it. Templates over ``{schema}`` and ``{jobs}``, shared by new schemas and the migration.
_RUN_TABLES = (
    """
    CREATE TABLE IF NOT EXISTS "{schema}".runs (
        seq bigint GENERATED ALWAYS AS IDENTITY,
        id text PRIMARY KEY,
        workflow text NOT NULL,
        key text,
        state text NOT NULL,
        inputs bytea NOT NULL,
        steps text NOT NULL,
        created_at double precision NOT NULL,
        finished_at double precision,
        result_ttl double precision NOT NULL
    )
    """,
    'CREATE INDEX IF NOT EXISTS runs_key ON "{schema}".runs (key, seq) WHERE key IS NOT NULL',
    # Purges look for runs that finished, and may go, by when they finished.
    'CREATE INDEX IF NOT EXISTS runs_finished ON "{schema}".runs (finished_at)'
    " WHERE state IN ('succeeded', 'cancelled')",
    """
    CREATE TABLE IF NOT EXISTS "{schema}".run_steps (
        run_id text NOT NULL,
        name text NOT NULL,
        state text NOT NULL,
        parents_left integer NOT NULL,
        items integer,
        items_done integer NOT NULL,
        items_failed integer NOT NULL,
        attempts integer NOT NULL,
        error_type text,
        error_message text,
        error_traceback text,
        started_at double precision,
        finished_at double precision,
        result bytea,
        PRIMARY KEY (run_id, name)
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS "{schema}".run_items (
        run_id text NOT NULL,
        step text NOT NULL,
        item integer NOT NULL,
        state text NOT NULL,
        value bytea,
        PRIMARY KEY (run_id, step, item)
    )
    """,
    "CREATE INDEX IF NOT EXISTS jobs_run ON {jobs} (run_id, step) WHERE run_id IS NOT NULL",
)

# What the listing reads take (an operator's pages: finished jobs by state, runs newest first), each state's
# rows in the order listed. Reads alone use them: a release with or without them reads and writes the same
# tables, so they come without a new schema version (releases on either side keep opening the schema side by
# side, as in a rolling upgrade), and a store makes those missing when it opens. Partial on the rare states:
# a succeeded job's end (the common one) writes no entry here, and its listing takes jobs_finished.
_READ_INDEXES = {
    "jobs_unsuccessful": "CREATE INDEX IF NOT EXISTS jobs_unsuccessful ON {jobs} (state, finished_at)"
    " WHERE state IN ('failed', 'cancelled', 'dead')",
    "runs_created": 'CREATE INDEX IF NOT EXISTS runs_created ON "{schema}".runs (state, created_at)',
}

# The statements that take a schema of version N to N + 1, run in one transaction under the schema's lock.
_MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (_ACTIVE_INDEX, 'DROP INDEX IF EXISTS "{schema}".jobs_state'),
    # Nullable columns without a default: no rewrite of the jobs table, whatever its size.
    2: (
        "ALTER TABLE {jobs} ADD COLUMN IF NOT EXISTS run_id text, ADD COLUMN IF NOT EXISTS step text,"
        " ADD COLUMN IF NOT EXISTS item integer",
        *_RUN_TABLES,
    ),
}


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
        _ACTIVE_INDEX.format(jobs=jobs),
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
        *(statement.format(jobs=jobs, schema=schema) for statement in _RUN_TABLES),
    )


async def _stored(conn: Conn, names: Names) -> tuple[int | None, bool]:
    """The schema version the tables carry (None: no tables yet), and whether every read index is there."""
    indexes = [f'"{names.schema}".{name}' for name in _READ_INDEXES]
    row = await conn.fetchrow(
        "SELECT to_regclass($1) IS NOT NULL, bool_and(to_regclass(n) IS NOT NULL) FROM unnest($2::text[]) AS n",
        names.meta,
        indexes,
    )
    assert row is not None  # an aggregate always yields a row
    if not row[0]:
        return None, False
    value = await conn.fetchval(f"SELECT value FROM {names.meta} WHERE name = 'schema_version'")
    return (None if value is None else int(value)), bool(row[1])


async def _create_or_migrate(conn: Conn, names: Names) -> None:
    """Under the schema's lock: create the tables, or migrate them, and make the read indexes missing."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"tasker_async.schema.{names.schema}")
        version, _ = await _stored(conn, names)
        if version is None:
            for statement in _tables(names):
                await conn.execute(statement)
            version = SCHEMA_VERSION
        while version in _MIGRATIONS and version < SCHEMA_VERSION:
            for statement in _MIGRATIONS[version]:
                await conn.execute(statement.format(jobs=names.jobs, schema=names.schema))
            version += 1
        if version == SCHEMA_VERSION:
            for statement in _READ_INDEXES.values():
                await conn.execute(statement.format(jobs=names.jobs, schema=names.schema))
        await conn.execute(
            f"INSERT INTO {names.meta} (name, value) VALUES ('schema_version', $1)"
            " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            str(version),
        )


async def ensure_schema(conn: Conn, names: Names) -> None:
    """Create the schema and its tables on first use, or migrate an older schema; refuse a newer one.

    Stores opening at once on an empty (or older) database take turns on an advisory lock (per schema name), so
    the tables are created or migrated once; a schema already up to date, its read indexes there, is only read.

    Raises:
        SchemaError: the tables carry a schema version this release cannot read.
    """
    version, indexed = await _stored(conn, names)
    if version is None or version < SCHEMA_VERSION or (version == SCHEMA_VERSION and not indexed):
        await _create_or_migrate(conn, names)
        version, _ = await _stored(conn, names)
    if version != SCHEMA_VERSION:
        raise SchemaError(
            f"schema {names.schema!r} has schema version {version}, and this version of tasker_async reads"
            f" {SCHEMA_VERSION}"
        )
