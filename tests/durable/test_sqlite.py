"""What only the SQLite store has: a file that outlives the store object, shared by connections and processes.

Restart durability, waits that see other connections' commits, a file that cannot be used (locked,
read-only, missing its directory, not a database) and real processes claiming from one file at once.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
from collections import Counter
from collections.abc import Iterator
from contextlib import AsyncExitStack
from pathlib import Path

import anyio
import pytest
from anyio.abc import Process
from anyio.streams.buffered import BufferedByteReceiveStream

from tasker_async.durable import Client, SQLiteStore, StoreUnavailableError, Workflow
from tasker_async.durable._stores.group import GroupCommit
from tasker_async.durable._stores.records import Outcome

from .test_store_protocol import consumer_info, new_job


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "tasker.db"


def make_read_only(path: Path) -> None:
    """Take write permission away; for root, which ignores modes, make the file or directory immutable."""
    path.chmod(0o555 if path.is_dir() else 0o444)
    if os.access(path, os.W_OK):
        subprocess.run(["chattr", "+i", str(path)], check=True)


def make_writable(path: Path) -> None:
    if path.exists() and not os.access(path, os.W_OK):
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", str(path)], check=True)
        path.chmod(0o755 if path.is_dir() else 0o644)


@pytest.fixture
def read_only(tmp_path: Path) -> Iterator[list[Path]]:
    """Paths a test made read-only with ``make_read_only``, made writable again afterwards."""
    paths: list[Path] = []
    yield paths
    for path in paths:
        make_writable(path)


# -- durability


async def test_a_job_survives_the_store_being_closed_and_opened_again(db: Path) -> None:
    async with SQLiteStore(db) as store:
        await store.enqueue(job := new_job(priority=True, key="k-1"))
        before = await store.info(job.id)
    async with SQLiteStore(db) as again:
        assert await again.info(job.id) == before
        assert await again.enqueue(new_job(key="k-1")) == job.id  # the key is still in use
        (claim,) = await again.claim("c1", ["default"], 1)
        assert (claim.id, claim.priority) == (job.id, True)


async def test_a_running_job_keeps_its_lease_across_a_restart(db: Path) -> None:
    async with SQLiteStore(db) as store:
        await store.enqueue(job := new_job(lease=30.0))
        (claim,) = await store.claim("c1", ["default"], 1)
    async with SQLiteStore(db) as again:
        info = await again.info(job.id)
        assert info is not None
        assert (info.state, info.consumer, info.deliveries) == ("running", "c1", 1)
        assert await again.reclaim() == 0
        renewal = await again.renew(consumer_info("c1"), [claim.hold])
        assert not renewal.lost
        assert await again.complete([Outcome(lease=claim.hold, state="succeeded", result=b"7")]) == [True]
    async with SQLiteStore(db) as third:
        finished = await third.wait(job.id, timeout=1.0)
        assert (finished.info.state, finished.result) == ("succeeded", b"7")


SUBMIT_THEN_DIE = textwrap.dedent(
    """
    import os, signal, sys, anyio
    from tasker_async.durable import SQLiteStore
    from tasker_async.durable._stores.records import NewJob

    async def main(path):
        store = SQLiteStore(path)
        await store.__aenter__()
        await store.enqueue(NewJob(id="survivor", name="tasks.echo", queue="default", payload=b"[1]"))
        os.kill(os.getpid(), signal.SIGKILL)  # no close, no checkpoint: only the synced log holds the job

    anyio.run(main, sys.argv[1])
    """
)


async def test_a_job_survives_its_submitting_process_being_killed(db: Path) -> None:
    async with SQLiteStore(db):
        pass
    process = await anyio.run_process([sys.executable, "-c", SUBMIT_THEN_DIE, str(db)], check=False)
    assert process.returncode == -9
    async with SQLiteStore(db) as store:
        (claim,) = await store.claim("c1", ["default"], 1)
        assert (claim.id, claim.payload) == ("survivor", b"[1]")


async def test_the_file_is_in_wal_mode(db: Path) -> None:
    async with SQLiteStore(db):
        pass
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()


async def test_a_closed_store_refuses_operations(db: Path) -> None:
    store = SQLiteStore(db)
    with pytest.raises(RuntimeError, match="not open"):
        await store.info("x")
    async with store:
        with pytest.raises(RuntimeError, match="open already"):
            await store.__aenter__()
    with pytest.raises(RuntimeError, match="not open"):
        await store.enqueue(new_job())


# -- several connections on one file


async def test_wait_sees_an_outcome_recorded_through_another_connection(db: Path) -> None:
    async with SQLiteStore(db) as waiter, SQLiteStore(db) as worker:
        jobs = [new_job() for _ in range(20)]
        for job in jobs:
            await worker.enqueue(job)
        claims = await worker.claim("c1", ["default"], 20)
        results: dict[str, bytes | None] = {}

        async def wait_for(job_id: str) -> None:
            results[job_id] = (await waiter.wait(job_id, timeout=5.0)).result

        with anyio.fail_after(5):
            async with anyio.create_task_group() as tg:
                for claim in claims:
                    tg.start_soon(wait_for, claim.id)
                # All parked: only the poll of the file can wake them.
                while "waiters=20" not in repr(waiter):  # noqa: ASYNC110 - the watch has no event to wait on
                    await anyio.sleep(0.01)
                outcomes = [Outcome(lease=c.hold, state="succeeded", result=c.id.encode()) for c in claims]
                assert await worker.complete(outcomes) == [True] * 20
        assert results == {claim.id: claim.id.encode() for claim in claims}


async def test_wait_ready_sees_a_job_enqueued_through_another_connection(db: Path) -> None:
    async with SQLiteStore(db) as consumer, SQLiteStore(db) as client:
        with anyio.fail_after(5):
            async with anyio.create_task_group() as tg:
                tg.start_soon(consumer.wait_ready, ["default"], 30.0)
                await anyio.sleep(0.1)
                await client.enqueue(new_job())
        assert await consumer.backlog(["default"]) == 1


async def test_a_cancel_through_another_connection_reaches_the_holder(db: Path) -> None:
    async with SQLiteStore(db) as holder, SQLiteStore(db) as client:
        await client.enqueue(job := new_job())
        (claim,) = await holder.claim("c1", ["default"], 1)
        assert await client.cancel(job.id)
        renewal = await holder.renew(consumer_info("c1"), [claim.hold])
        assert renewal.cancelled == {job.id}


# -- a file that cannot be used


async def test_a_locked_file_raises_store_unavailable_naming_it(db: Path) -> None:
    async with SQLiteStore(db, busy_timeout=0.2) as store:
        other = sqlite3.connect(db, isolation_level=None)
        try:
            other.execute("BEGIN EXCLUSIVE")
            with anyio.fail_after(5), pytest.raises(StoreUnavailableError, match="locked") as caught:
                await store.enqueue(new_job())
            assert str(db) in str(caught.value)
            other.execute("ROLLBACK")
        finally:
            other.close()
        # The failed transaction left nothing behind: the store works again.
        await store.enqueue(job := new_job())
        assert await store.info(job.id) is not None


async def test_a_missing_directory_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(StoreUnavailableError, match="does not exist") as caught:
        async with SQLiteStore(missing / "tasker.db"):
            pass
    assert f"cannot open SQLite store at {missing / 'tasker.db'}: directory {missing} does not exist" in str(
        caught.value
    )


async def test_a_read_only_file_is_named(db: Path, read_only: list[Path]) -> None:
    async with SQLiteStore(db):
        pass
    make_read_only(db)
    read_only.append(db)
    with pytest.raises(StoreUnavailableError, match="read-only") as caught:
        async with SQLiteStore(db):
            pass
    assert str(db) in str(caught.value)


async def test_a_read_only_directory_is_named(tmp_path: Path, read_only: list[Path]) -> None:
    directory = tmp_path / "locked-up"
    directory.mkdir()
    make_read_only(directory)
    read_only.append(directory)
    with pytest.raises(StoreUnavailableError, match="read-only") as caught:
        async with SQLiteStore(directory / "tasker.db"):
            pass
    assert f"directory {directory}" in str(caught.value)


async def test_a_file_that_is_not_a_database_is_named(db: Path) -> None:
    await anyio.Path(db).write_bytes(b"these are not the pages of a database\n" * 200)
    with pytest.raises(StoreUnavailableError, match="not a SQLite database") as caught:
        async with SQLiteStore(db):
            pass
    assert str(db) in str(caught.value)


async def test_a_file_of_another_schema_version_is_refused(db: Path) -> None:
    async with SQLiteStore(db):
        pass
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        conn.execute("UPDATE meta SET value = '99' WHERE name = 'schema_version'")
    finally:
        conn.close()
    with pytest.raises(StoreUnavailableError, match="schema version 99") as caught:
        async with SQLiteStore(db):
            pass
    assert str(db) in str(caught.value)


async def test_a_file_of_schema_version_1_is_migrated_and_keeps_its_jobs(db: Path) -> None:
    async with SQLiteStore(db) as store:
        job_id = await store.enqueue(new_job())
    conn = sqlite3.connect(db, isolation_level=None)
    try:  # back to version 1: no run tables, no step columns on jobs
        for statement in (
            "DROP INDEX jobs_run",
            "ALTER TABLE jobs DROP COLUMN run_id",
            "ALTER TABLE jobs DROP COLUMN step",
            "ALTER TABLE jobs DROP COLUMN item",
            "DROP TABLE runs",
            "DROP TABLE run_steps",
            "DROP TABLE run_items",
            "UPDATE meta SET value = '1' WHERE name = 'schema_version'",
        ):
            conn.execute(statement)
    finally:
        conn.close()
    flow = Workflow("migrated")

    @flow.step()
    async def only(resource: object) -> int:
        return 1

    async with SQLiteStore(db) as store, Client(store) as client:
        info = await store.info(job_id)
        run = await client.start(flow)
        run_info = await run.info()
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        version = conn.execute("SELECT value FROM meta WHERE name = 'schema_version'").fetchone()[0]
    finally:
        conn.close()
    assert info is not None
    assert (info.id, info.state) == (job_id, "queued")
    assert run_info.steps["only"].state == "ready"
    assert version == "2"


def test_busy_timeout_must_be_a_finite_number_of_seconds(db: Path) -> None:
    from tasker_async.errors import ConfigError

    for bad in (-1.0, float("inf"), float("nan"), True):
        with pytest.raises(ConfigError, match="busy_timeout"):
            SQLiteStore(db, busy_timeout=bad)


# -- processes sharing one file

CLAIMER = textwrap.dedent(
    """
    import json, os, sys, anyio
    from tasker_async.durable import SQLiteStore
    from tasker_async.durable._stores.records import Outcome

    async def main(path, stop):
        async with SQLiteStore(path) as store:
            print("ready", flush=True)
            while True:
                claims = await store.claim(f"proc-{os.getpid()}", ["default"], 3)
                if claims:
                    done = await store.complete([Outcome(lease=c.hold, state="succeeded") for c in claims])
                    print(json.dumps({"ids": [c.id for c in claims], "recorded": done}), flush=True)
                elif os.path.exists(stop):
                    return
                else:
                    await store.wait_ready(["default"], 0.2)

    anyio.run(main, sys.argv[1], sys.argv[2])
    """
)


async def read_lines(stream: BufferedByteReceiveStream) -> list[str]:
    """The lines a process writes until it closes its output."""
    lines: list[str] = []
    while True:
        try:
            lines.append((await stream.receive_until(b"\n", 1 << 20)).decode())
        except anyio.IncompleteRead:
            return lines


async def test_processes_sharing_a_file_claim_each_job_once(db: Path, tmp_path: Path) -> None:
    stop = anyio.Path(tmp_path / "stop")
    outputs: list[list[str]] = []
    async with SQLiteStore(db) as store, AsyncExitStack() as stack:  # the schema exists before the claimers start
        procs = [
            await stack.enter_async_context(
                await anyio.open_process([sys.executable, "-c", CLAIMER, str(db), str(stop)])
            )
            for _ in range(3)
        ]
        stack.push_async_callback(kill_all, procs)
        streams = [BufferedByteReceiveStream(proc.stdout) for proc in procs if proc.stdout is not None]
        with anyio.fail_after(20):
            for stream in streams:
                assert await stream.receive_until(b"\n", 100) == b"ready"
            jobs = [new_job() for _ in range(200)]
            for burst in range(0, len(jobs), 20):  # enqueued while the claimers take them, 20 at a time
                async with anyio.create_task_group() as tg:
                    for job in jobs[burst : burst + 20]:
                        tg.start_soon(store.enqueue, job)
            for job in jobs:
                finished = await store.wait(job.id, timeout=None)
                assert finished.info.state == "succeeded"
            await stop.touch()
            outputs = [await read_lines(stream) for stream in streams]
            assert [await proc.wait() for proc in procs] == [0, 0, 0]
    claimed: Counter[str] = Counter()
    for lines in outputs:
        for line in map(json.loads, lines):
            assert all(line["recorded"])
            claimed.update(line["ids"])
    assert claimed == Counter({job.id: 1 for job in jobs})  # every job claimed, none twice


async def kill_all(procs: list[Process]) -> None:
    for proc in procs:
        if proc.returncode is None:
            proc.kill()


# -- group commit


async def test_concurrent_enqueues_share_transactions_and_keys_hold_within_one(db: Path) -> None:
    async with SQLiteStore(db) as store:
        jobs = [new_job(key="same" if index % 2 else None) for index in range(40)]
        ids: dict[int, str] = {}

        async def enqueue(index: int) -> None:
            ids[index] = await store.enqueue(jobs[index])

        async with anyio.create_task_group() as tg:
            for index in range(len(jobs)):
                tg.start_soon(enqueue, index)
        keyed = {ids[index] for index in range(1, 40, 2)}
        assert len(keyed) == 1  # one job holds the key; every other submission with it got that job's id
        assert all(ids[index] == jobs[index].id for index in range(0, 40, 2))
        stats = await store.stats("default")
        assert stats.ready_main == 21


async def test_a_group_is_committed_for_all_when_its_first_caller_is_cancelled() -> None:
    gate = anyio.Event()
    commits: list[list[int]] = []

    async def commit(items: list[int]) -> list[int]:
        commits.append(list(items))
        await gate.wait()
        return [item * 10 for item in items]

    group: GroupCommit[int, int] = GroupCommit(commit)
    results: dict[int, int] = {}

    async def call(item: int) -> None:
        results[item] = await group(item)

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(call, 1)  # leads the first group, whose commit waits on the gate
            await anyio.wait_all_tasks_blocked()
            async with anyio.create_task_group() as second:
                second.start_soon(call, 2)  # leads the second group: waits for the first commit
                await anyio.wait_all_tasks_blocked()
                tg.start_soon(call, 3)  # joins the second group
                await anyio.wait_all_tasks_blocked()
                second.cancel_scope.cancel()  # the second group's first caller gives up...
                gate.set()  # ...yet its group is committed, for the caller that joined it
    assert commits == [[1], [2, 3]]
    # The cancelled caller's item was stored all the same, so it returns its result; the cancellation
    # reaches it at its next checkpoint.
    assert results == {1: 10, 2: 20, 3: 30}


async def test_a_failed_group_commit_reaches_every_caller_of_the_group() -> None:
    async def commit(items: list[int]) -> list[int]:
        await anyio.sleep(0.01)
        raise StoreUnavailableError("down")

    group: GroupCommit[int, int] = GroupCommit(commit)
    failures: list[str] = []

    async def call(item: int) -> None:
        try:
            await group(item)
        except StoreUnavailableError as exc:
            failures.append(str(exc))

    async with anyio.create_task_group() as tg:
        for item in range(3):
            tg.start_soon(call, item)
    assert failures == ["down"] * 3
