"""What only the PostgreSQL store has: its server restarting or going away, its schema, its URL and options."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import anyio
import anyio.to_thread
import asyncpg
import pytest

from tasker_async.durable import (
    Client,
    PostgresStore,
    RunFailedError,
    StoreUnavailableError,
    Workflow,
    open_store,
)
from tasker_async.errors import ConfigError

from ._doubles import Lab, eventually, serving
from .servers import free_port
from .servers.postgres_server import PostgresServer, running


@pytest.fixture(scope="module")
def own_server() -> Iterator[PostgresServer]:
    """A server of this module's own, since its tests stop and start it."""
    with running() as server:
        yield server


@pytest.fixture
def server(own_server: PostgresServer) -> Iterator[PostgresServer]:
    """The module's server, running again after the test whatever the test did to it."""
    yield own_server
    if own_server._process is None:
        own_server.start()


def _schema() -> str:
    return f"test_{uuid.uuid4().hex[:12]}"


async def _unreachable(store: PostgresStore) -> bool:
    try:
        await store.queue_names()
    except StoreUnavailableError:
        return True
    return False


@pytest.mark.parametrize("mode", ["fast", "immediate"])
async def test_a_restart_of_the_server_mid_run_loses_nothing(server: PostgresServer, mode: str) -> None:
    # ``immediate`` quits as a crash would: what was committed comes back from the write-ahead log.
    lab = Lab(lease=3.0)
    schema = _schema()
    async with PostgresStore(server.dsn, schema=schema) as store, Client(store) as client:
        async with serving(store, lab, workers=2) as node:
            running = await client.submit(lab.hold, "running")
            await eventually(lambda: lab.starts("running") == 1, "started")
            before = [await client.submit(lab.echo, f"before-{index}") for index in range(10)]
            await anyio.to_thread.run_sync(lambda: server.stop(mode=mode))
            lab.open("running")  # it ends while the server is down: recorded once it is back
            await anyio.to_thread.run_sync(server.start)
            after = [await client.submit(lab.echo, f"after-{index}") for index in range(10)]
            results = [await job.result(timeout=20) for job in [running, *before, *after]]
            assert node.consumer is not None
        infos = [await job.info() for job in [running, *before, *after]]
    labels = [f"before-{index}" for index in range(10)] + [f"after-{index}" for index in range(10)]
    assert results == ["running", *labels]
    assert {info.state for info in infos} == {"succeeded"}
    # A claim the server committed as it went down, whose reply was lost, comes back when its lease expires:
    # one more delivery, still one run and one outcome.
    assert {info.deliveries for info in infos} <= {1, 2}
    assert sorted(lab.order) == sorted(results)  # each ran once


async def test_what_submit_returned_survives_a_crash_of_the_server(server: PostgresServer) -> None:
    schema = _schema()
    lab = Lab()
    async with PostgresStore(server.dsn, schema=schema) as store, Client(store) as client:
        jobs = [await client.submit(lab.echo, index, key=f"k{index}") for index in range(20)]
    await anyio.to_thread.run_sync(lambda: server.stop(mode="immediate"))
    await anyio.to_thread.run_sync(server.start)
    async with PostgresStore(server.dsn, schema=schema) as store, Client(store) as client:
        stats = await store.stats("default")
        assert stats.ready_main == 20
        again = await client.submit(lab.echo, 0, key="k0")
        assert again.id == jobs[0].id  # the key still dedups after the crash
        async with serving(store, lab, workers=4):
            assert [await client.job(job.id).result(timeout=20) for job in jobs] == list(range(20))


async def test_an_outage_of_a_few_seconds_mid_run_the_consumer_recovers_on_its_own(server: PostgresServer) -> None:
    lab = Lab(lease=10.0)
    async with PostgresStore(server.dsn, schema=_schema()) as store, Client(store) as client:
        async with serving(store, lab) as node:
            running = await client.submit(lab.hold, "running")
            queued = await client.submit(lab.echo, "queued")
            await eventually(lambda: lab.starts("running") == 1, "started")
            await anyio.to_thread.run_sync(server.stop)
            await eventually(lambda: _unreachable(store), "the server unreachable")
            lab.open("running")
            await eventually(lambda: lab.finished == ["running"], "the run ended during the outage")
            await anyio.sleep(2.0)  # the outage itself: the consumer keeps trying, backing off
            assert node.manager.stats().state == "running"
            await anyio.to_thread.run_sync(server.start)
            assert await running.result(timeout=20) == "running"
            assert await queued.result(timeout=20) == "queued"
            later = await client.submit(lab.echo, "later")
            assert await later.result(timeout=20) == "later"
        infos = [await job.info() for job in (running, queued, later)]
    assert [(info.state, info.deliveries) for info in infos] == [("succeeded", 1)] * 3
    assert lab.order == ["running", "queued", "later"]


async def test_waiting_clients_share_one_listener_that_comes_back_after_a_restart(server: PostgresServer) -> None:
    lab = Lab()
    async with PostgresStore(server.dsn, schema=_schema(), pool_size=2) as store, Client(store) as client:
        jobs = [await client.submit(lab.echo, index) for index in range(30)]
        results: dict[int, object] = {}

        async def wait(index: int) -> None:
            results[index] = await jobs[index].result(timeout=20)

        async with anyio.create_task_group() as group:
            for index in range(30):
                group.start_soon(wait, index)
            await eventually(lambda: "Listener(listening, job_waiters=30" in repr(store), "30 waiters listening")
            await anyio.to_thread.run_sync(server.stop)
            await anyio.to_thread.run_sync(server.start)
            async with serving(store, lab, workers=4):
                await eventually(lambda: len(results) == 30, "every waiter woken")
                # The idle consumer waits for work through the listener, which has connected again.
                await eventually(lambda: "Listener(listening" in repr(store), "listening again")
        assert results == {index: index for index in range(30)}


async def test_an_unreachable_server_raises_store_unavailable_naming_it_not_its_password() -> None:
    port = free_port()
    store = PostgresStore(f"postgresql://app:hunter2@127.0.0.1:{port}/tasks", connect_timeout=1.0)
    with pytest.raises(StoreUnavailableError, match=f"127.0.0.1:{port}/tasks") as caught:
        async with store:
            pass
    assert "hunter2" not in str(caught.value)


async def test_stores_opening_at_once_on_an_empty_schema_create_it_once(server: PostgresServer) -> None:
    schema = _schema()
    opened: list[list[str]] = []

    async def open_one() -> None:
        async with PostgresStore(server.dsn, schema=schema) as store:
            opened.append(await store.queue_names())

    async with anyio.create_task_group() as group:
        for _ in range(6):
            group.start_soon(open_one)
    assert opened == [[]] * 6


async def test_a_schema_of_another_version_is_refused(server: PostgresServer) -> None:
    schema = _schema()
    async with PostgresStore(server.dsn, schema=schema):
        pass
    conn = await asyncpg.connect(server.dsn)
    try:
        await conn.execute(f"UPDATE \"{schema}\".meta SET value = '999' WHERE name = 'schema_version'")
    finally:
        await conn.close()
    with pytest.raises(StoreUnavailableError, match="schema version 999"):
        async with PostgresStore(server.dsn, schema=schema):
            pass


async def test_a_schema_of_version_1_is_migrated_and_keeps_its_jobs(server: PostgresServer) -> None:
    schema = _schema()
    async with PostgresStore(server.dsn, schema=schema) as store, Client(store) as client:
        kept = await client.submit("tasks.kept", 1)
    # Version 1 had one index over every row's state, which the claims' planner could take to sort a backlog.
    conn = await asyncpg.connect(server.dsn)
    try:
        await conn.execute(f'DROP INDEX "{schema}".jobs_active')
        await conn.execute(f'CREATE INDEX jobs_state ON "{schema}".jobs (state, queue)')
        await conn.execute(f"UPDATE \"{schema}\".meta SET value = '1' WHERE name = 'schema_version'")
    finally:
        await conn.close()
    async with PostgresStore(server.dsn, schema=schema) as store, Client(store) as client:
        assert (await client.job(kept.id).info()).state == "queued"
        [claim] = await store.claim("consumer-1", ["default"], 5)
        assert claim.id == kept.id
    conn = await asyncpg.connect(server.dsn)
    try:
        version = await conn.fetchval(f"SELECT value FROM \"{schema}\".meta WHERE name = 'schema_version'")
        indexes = {row[0] for row in await conn.fetch("SELECT indexname FROM pg_indexes WHERE schemaname = $1", schema)}
    finally:
        await conn.close()
    assert version == "3"  # and on to the latest
    assert "jobs_active" in indexes
    assert "jobs_state" not in indexes


async def test_a_schema_of_version_2_is_migrated_keeps_its_jobs_and_runs_workflows(server: PostgresServer) -> None:
    schema = _schema()
    async with PostgresStore(server.dsn, schema=schema) as store, Client(store) as client:
        kept = await client.submit("tasks.kept", 1)
    # Version 2 had no runs: no run tables, no run step columns on the jobs.
    conn = await asyncpg.connect(server.dsn)
    try:
        await conn.execute(f'DROP TABLE "{schema}".runs, "{schema}".run_steps, "{schema}".run_items')
        await conn.execute(f'ALTER TABLE "{schema}".jobs DROP COLUMN run_id, DROP COLUMN step, DROP COLUMN item')
        await conn.execute(f"UPDATE \"{schema}\".meta SET value = '2' WHERE name = 'schema_version'")
    finally:
        await conn.close()
    lab = Lab()
    flow = Workflow("migrated")

    @flow.step()
    async def first(resource: str, *, x: int) -> int:
        return x + 1

    @flow.step(depends_on=[first])
    async def second(resource: str, *, first: int) -> int:
        return first * 10

    lab.registry.add_workflow(flow)
    async with PostgresStore(server.dsn, schema=schema) as store, Client(store) as client:
        assert (await client.job(kept.id).info()).state == "queued"
        assert await store.cancel(kept.id) is True
        async with serving(store, lab):
            results = await (await client.start(flow, x=1)).result(timeout=10)
    assert results == {"first": 2, "second": 20}
    conn = await asyncpg.connect(server.dsn)
    try:
        version = await conn.fetchval(f"SELECT value FROM \"{schema}\".meta WHERE name = 'schema_version'")
    finally:
        await conn.close()
    assert version == "3"


async def test_a_step_job_gone_dead_fails_its_run_and_only_a_resume_runs_it_again(server: PostgresServer) -> None:
    lab = Lab()
    flow = Workflow("fragile", lease=0.5, max_deliveries=1)

    @flow.step()
    async def only(resource: str) -> str:
        return "done"

    lab.registry.add_workflow(flow)

    async with PostgresStore(server.dsn, schema=_schema()) as store, Client(store) as client:

        async def reclaimed() -> bool:
            return await store.reclaim() == 1

        run = await client.start(flow)
        [claim] = await store.claim("gone-silent", ["default"], 1)
        # Its consumer never comes back: once the lease expires, the one delivery allowed is spent.
        await eventually(reclaimed, "the expired lease taken back")
        assert (await client.job(claim.id).info()).state == "dead"
        assert await store.requeue_dead(claim.id) is False  # a second outcome of the step would follow
        with pytest.raises(RunFailedError):
            await run.result(timeout=5)
        resumed = await client.resume(run.id)
        async with serving(store, lab):
            assert await resumed.result(timeout=10) == {"only": "done"}
        info = await run.info()
    assert info.state == "succeeded"
    assert info.steps["only"].attempts == 2


async def test_a_run_cancel_waits_for_a_step_job_being_finished_without_holding_the_run(server: PostgresServer) -> None:
    flow = Workflow("held")

    @flow.step()
    async def only(resource: str) -> int:
        return 1

    schema = _schema()
    cancelled: list[bool] = []
    async with PostgresStore(server.dsn, schema=schema) as store, Client(store) as client:
        run = await client.start(flow)

        async def cancel() -> None:
            # The store's own call: the client would try again after a deadlock broken by the server.
            cancelled.append(await store.cancel_run(run.id))

        conn, watch = await asyncpg.connect(server.dsn), await asyncpg.connect(server.dsn)
        try:

            async def cancel_waits() -> bool:
                sql = "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%run_id%'"
                return bool(await watch.fetchval(sql))

            # A deadlock fails fast: the server breaks it by failing one of the two transactions.
            await conn.execute("SET lock_timeout = '5s'")
            async with anyio.create_task_group() as group, conn.transaction():
                # As a transaction finishing the step's job does: its row first, then its run's.
                await conn.execute(f'SELECT id FROM "{schema}".jobs WHERE run_id = $1 FOR UPDATE', run.id)
                group.start_soon(cancel)
                await eventually(cancel_waits, "the cancel waiting for the job")
                await conn.execute(f'SELECT id FROM "{schema}".runs WHERE id = $1 FOR UPDATE', run.id)
                assert cancelled == []
        finally:
            await conn.close()
            await watch.close()
        info = await run.info()
    assert cancelled == [True]
    assert info.state == "cancelled"


async def test_open_store_takes_both_schemes_and_a_schema(server: PostgresServer) -> None:
    schema = _schema()
    for url in (
        f"{server.dsn}?schema={schema}",
        server.dsn.replace("postgresql://", "postgres://") + f"?schema={schema}",
    ):
        store = open_store(url)
        assert isinstance(store, PostgresStore)
        assert store.schema == schema
        async with store:
            assert await store.queue_names() == []
    assert open_store(server.dsn).schema == "tasker_async"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"schema": "no-dashes"}, "schema"),
        ({"schema": "1st"}, "schema"),
        ({"schema": "x" * 52}, "schema"),
        ({"pool_size": 0}, "pool_size"),
        ({"connect_timeout": 0}, "connect_timeout"),
        ({"connect_timeout": float("inf")}, "connect_timeout"),
    ],
)
def test_bad_options_are_refused(options: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        PostgresStore("postgresql://localhost/db", **options)  # type: ignore[arg-type]


async def test_a_busy_consumer_issues_at_most_three_statements_per_job(
    server: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Counted at the driver: every statement the consumer's store sends (BEGIN and COMMIT included).
    statements: list[str] = []
    create_pool = asyncpg.create_pool

    def counting_pool(*args: Any, **kwargs: Any) -> Any:
        async def init(conn: asyncpg.Connection[Any]) -> None:
            conn.add_query_logger(lambda record: statements.append(record.query))

        return create_pool(*args, init=init, **kwargs)

    lab = Lab()
    count = 300
    schema = _schema()
    async with PostgresStore(server.dsn, schema=schema) as store, Client(store) as client:
        jobs = [await client.submit(lab.echo, index) for index in range(count)]
        monkeypatch.setattr(asyncpg, "create_pool", counting_pool)
        async with PostgresStore(server.dsn, schema=schema) as counted:
            monkeypatch.undo()
            statements.clear()  # the schema check on entering is not per job
            async with serving(counted, lab, workers=8):
                await eventually(lambda: len(lab.finished) == count, "every job run")
                assert [await job.result(timeout=10) for job in jobs[-5:]] == list(range(count - 5, count))
            per_job = len(statements) / count
    assert per_job <= 3, f"{len(statements)} statements for {count} jobs: {Counter(s[:40] for s in statements)}"


def test_without_asyncpg_the_core_imports_and_the_store_names_the_extra() -> None:
    script = (
        "import sys\n"
        "sys.modules['asyncpg'] = None\n"  # as if it were not installed
        "import tasker_async.durable as durable\n"
        "from tasker_async.durable import open_store\n"
        "for attempt in (lambda: durable.PostgresStore, lambda: open_store('postgresql://localhost/db')):\n"
        "    try:\n"
        "        attempt()\n"
        "    except ImportError as exc:\n"
        "        print(exc)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    lines = done.stdout.splitlines()
    assert len(lines) == 2, done.stdout + done.stderr
    assert all("pip install 'tasker-async[postgres]'" in line for line in lines)
