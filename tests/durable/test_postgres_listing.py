"""The PostgreSQL store's listing reads on a big table: each reads an index, never every finished row."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import pytest

from tasker_async.durable import PostgresStore

from .servers.postgres_server import PostgresServer

# Many succeeded jobs (and runs), a few of the rare states among them: a listing of the rare ones that read
# every finished row would read them all.
SUCCEEDED = 10_000

_JOBS = """
INSERT INTO {jobs} (id, name, queue, payload, priority, state, ready_at, lease, max_deliveries, once, result_ttl,
    created_at, started_at, finished_at, deliveries, error_type, error_message, error_traceback)
SELECT 'job-' || lpad(g::text, 6, '0'), 'tasks.work', CASE WHEN g % 2 = 0 THEN 'mail' ELSE 'default' END,
    '\\x5b5d'::bytea, false, $2, g, 30, 3, false, 86400, 1e9 + g, 1e9 + g, 1e9 + g + 0.5, 1,
    CASE WHEN $2 <> 'succeeded' THEN 'mod.Boom' END, CASE WHEN $2 <> 'succeeded' THEN 'boom' END, NULL
FROM generate_series($1::int, $3::int) AS g
"""
_RUNS = """
INSERT INTO {runs} (id, workflow, state, inputs, steps, created_at, finished_at, result_ttl)
SELECT 'run-' || lpad(g::text, 6, '0'), 'flow', 'succeeded', '\\x7b7d'::bytea, '{{}}', 1e9 + g, 1e9 + g + 1, 86400
FROM generate_series(1, $1::int) AS g
"""
# (first, state, last): the rare ones early, amid and late among the succeeded ones.
_FILL = (
    (1, "failed", 2),
    (3, "dead", 3),
    (4, "succeeded", SUCCEEDED // 2),
    (SUCCEEDED // 2 + 1, "cancelled", SUCCEEDED // 2 + 1),
    (SUCCEEDED // 2 + 2, "succeeded", SUCCEEDED),
    (SUCCEEDED + 1, "failed", SUCCEEDED + 1),
    (SUCCEEDED + 2, "dead", SUCCEEDED + 3),
)


@pytest.fixture
def schema() -> str:
    return f"test_{uuid.uuid4().hex[:12]}"


@asynccontextmanager
async def _admin(server: PostgresServer) -> AsyncIterator[asyncpg.Connection[Any]]:
    conn = await asyncpg.connect(server.dsn)
    try:
        yield conn
    finally:
        await conn.close()


@pytest.fixture
def statements(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, tuple[Any, ...]]]:
    """The statements (and their arguments) the stores opened in the test send, in order."""
    sent: list[tuple[str, tuple[Any, ...]]] = []
    create_pool = asyncpg.create_pool

    def logging_pool(*args: Any, **kwargs: Any) -> Any:
        async def init(conn: asyncpg.Connection[Any]) -> None:
            conn.add_query_logger(lambda record: sent.append((record.query, tuple(record.args or ()))))

        return create_pool(*args, init=init, **kwargs)

    monkeypatch.setattr(asyncpg, "create_pool", logging_pool)
    return sent


async def _fill(server: PostgresServer, schema: str, table: str) -> None:
    async with _admin(server) as conn:
        if table == "jobs":
            for first, state, last in _FILL:
                await conn.execute(_JOBS.format(jobs=f'"{schema}".jobs'), first, state, last)
        else:
            await conn.execute(_RUNS.format(runs=f'"{schema}".runs'), SUCCEEDED)
        # What autovacuum does on a table this size: the planner knows the rare states are rare.
        await conn.execute(f'ANALYZE "{schema}".{table}')


def _scans(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    if "Relation Name" in node:
        yield node
    for child in node.get("Plans", []):
        yield from _scans(child)


async def _read_rows(server: PostgresServer, sql: str, args: tuple[Any, ...], *, generic: bool) -> dict[str, float]:
    """Each scan of the statement's plan (``Node Type`` and index): the rows it read, filtered out ones too.

    Run as a prepared statement, with the plan it would get as a custom plan, or as the generic plan that a
    statement prepared once and run many times may get.
    """
    async with _admin(server) as conn:
        await conn.execute(f"SET plan_cache_mode = {'force_generic_plan' if generic else 'force_custom_plan'}")
        await conn.execute(f"PREPARE listing AS {sql}")
        values = ", ".join(str(value) if isinstance(value, int) else f"'{value}'" for value in args)
        [[text]] = await conn.fetch(f"EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE listing({values})")
    read: dict[str, float] = {}
    for scan in _scans(json.loads(text)[0]["Plan"]):
        name = f"{scan['Node Type']} {scan.get('Index Name', '')}".strip()
        rows = (scan["Actual Rows"] + scan.get("Rows Removed by Filter", 0)) * scan["Actual Loops"]
        read[name] = read.get(name, 0) + rows
    return read


async def test_finished_jobs_of_the_rare_states_read_their_index_not_the_succeeded_rows(
    postgres_server: PostgresServer, schema: str, statements: list[tuple[str, tuple[Any, ...]]]
) -> None:
    async with PostgresStore(postgres_server.dsn, schema=schema) as store:
        await _fill(postgres_server, schema, "jobs")
        statements.clear()
        troubled = await store.finished_jobs(["failed", "dead"], limit=3)
        mail = await store.finished_jobs(["failed", "dead", "cancelled"], queue="mail")
        every = await store.finished_jobs(["succeeded", "failed", "cancelled", "dead"], limit=5)
    assert [(job.id, job.state) for job in troubled] == [
        (f"job-{SUCCEEDED + 3:06}", "dead"),
        (f"job-{SUCCEEDED + 2:06}", "dead"),
        (f"job-{SUCCEEDED + 1:06}", "failed"),
    ]
    assert [job.id for job in mail] == [f"job-{SUCCEEDED + 2:06}", "job-000002"]
    assert [job.id for job in every] == [f"job-{index:06}" for index in range(SUCCEEDED + 3, SUCCEEDED - 2, -1)]
    assert len(statements) == 3
    for sql, args in statements:
        for generic in (False, True):
            read = await _read_rows(postgres_server, sql, args, generic=generic)
            assert not any(scan.startswith("Seq Scan") for scan in read), read
            assert sum(read.values()) <= 50, read  # of the 10 007 finished rows


async def test_recent_runs_of_a_rare_state_read_their_index_not_every_run(
    postgres_server: PostgresServer, schema: str, statements: list[tuple[str, tuple[Any, ...]]]
) -> None:
    async with PostgresStore(postgres_server.dsn, schema=schema) as store:
        await _fill(postgres_server, schema, "runs")
        statements.clear()
        assert await store.recent_runs(states=["failed", "cancelled"]) == []
    [(sql, args)] = statements
    for generic in (False, True):
        read = await _read_rows(postgres_server, sql, args, generic=generic)
        assert {scan.split()[-1] for scan in read} == {"runs_created"}, read
        assert sum(read.values()) == 0, read  # of the 10 000 runs


async def test_a_schema_without_the_read_indexes_gets_them_when_a_store_opens(
    postgres_server: PostgresServer, schema: str
) -> None:
    async with PostgresStore(postgres_server.dsn, schema=schema):
        pass
    # As a release from before them left it: the same schema version, without the listing's indexes.
    async with _admin(postgres_server) as conn:
        version = await conn.fetchval(f"SELECT value FROM \"{schema}\".meta WHERE name = 'schema_version'")
        await conn.execute(f'DROP INDEX "{schema}".jobs_unsuccessful, "{schema}".runs_created')
    async with PostgresStore(postgres_server.dsn, schema=schema) as store:
        assert await store.finished_jobs(["dead"]) == []
    async with _admin(postgres_server) as conn:
        indexes = await conn.fetch("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = $1", schema)
        again = await conn.fetchval(f"SELECT value FROM \"{schema}\".meta WHERE name = 'schema_version'")
    made = {row[0]: row[1] for row in indexes}
    rare = "WHERE (state = ANY (ARRAY['failed'::text, 'cancelled'::text, 'dead'::text]))"
    assert made["jobs_unsuccessful"].endswith(f"(state, finished_at) {rare}")
    assert made["runs_created"].endswith("(state, created_at)")
    assert again == version
