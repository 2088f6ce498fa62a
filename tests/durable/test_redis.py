"""RedisStore on a real server of its own: a restart keeps every job, an outage mid-run loses nothing."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tasker_async.durable import Client, ErrorInfo, RedisStore, StoreUnavailableError, open_store
from tasker_async.durable._stores.records import Lease, NewJob, Outcome
from tasker_async.durable._stores.redis import codec

from ._doubles import Lab, eventually, serving
from .servers.redis_server import RedisServer


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisServer]:
    started = RedisServer(tmp_path / "redis")
    started.start()
    try:
        yield started
    finally:
        started.stop()


async def test_every_submitted_job_survives_a_server_restart_and_runs_in_order(server: RedisServer) -> None:
    lab = Lab()
    async with RedisStore(server.url) as store, Client(store) as client:
        plain = [await client.submit(lab.echo, f"job-{n}") for n in range(5)]
        urgent = await client.submit(lab.echo, "urgent", priority=True)
        keyed = await client.submit(lab.echo, "keyed", key="report-1")
        delayed = await client.submit(lab.echo, "delayed", delay=0.2)
    server.stop()  # SHUTDOWN: the server exits; only its append-only file remains
    server.start()
    async with RedisStore(server.url) as store, Client(store) as client:
        assert (await client.submit(lab.echo, "again", key="report-1")).id == keyed.id
        stats = await client.stats()
        assert (stats.ready_priority, stats.ready_main + stats.delayed, stats.running) == (1, 7, 0)
        async with serving(store, lab):
            jobs = [urgent, *plain, keyed, delayed]
            results = [await client.job(job.id).result(timeout=10) for job in jobs]
    expected = ["urgent", *(f"job-{n}" for n in range(5)), "keyed", "delayed"]
    assert results == expected
    assert lab.order == expected


async def test_a_server_outage_mid_run_loses_nothing_and_the_consumer_recovers_on_its_own(
    server: RedisServer,
) -> None:
    # The outage is far shorter than the lease: the consumer still holds the job when the server returns.
    lab = Lab(lease=5.0)
    async with RedisStore(server.url) as store, Client(store) as client, serving(store, lab) as node:
        running = await client.submit(lab.hold, "running")
        await eventually(lambda: lab.starts("running") == 1, "started")
        queued = [await client.submit(lab.echo, f"queued-{n}") for n in range(3)]
        server.stop()
        with pytest.raises(StoreUnavailableError, match=rf"127\.0\.0\.1:{server.port}"):
            await store.stats("default")
        lab.open("running")  # the run ends while the server is down: its outcome waits to be recorded
        await eventually(lambda: node.consumer.stats().unrecorded == 1, "an outcome waiting for the server")
        assert lab.finished == ["running"]
        server.start()
        assert await running.result(timeout=10) == "running"
        assert [await job.result(timeout=10) for job in queued] == ["queued-0", "queued-1", "queued-2"]
        infos = [await client.job(job.id).info() for job in (running, *queued)]
    assert [(info.state, info.deliveries) for info in infos] == [("succeeded", 1)] * 4
    assert lab.order == ["running", "queued-0", "queued-1", "queued-2"]


async def test_a_server_that_lost_the_functions_is_given_them_again(server: RedisServer) -> None:
    # Functions live in the dataset: a FUNCTION FLUSH (or a restart without the append-only file) drops them.
    lab = Lab()
    async with RedisStore(server.url) as store, Client(store) as client:
        first = await client.submit(lab.echo, "first")
        assert store._client is not None
        await store._client.function_flush()
        second = await client.submit(lab.echo, "second")
        async with serving(store, lab):
            assert [await first.result(timeout=10), await second.result(timeout=10)] == ["first", "second"]
        libraries = await store._client.function_list()
        assert len(libraries) == 1  # loaded once more, and once only


async def test_store_objects_of_one_version_share_one_library(server: RedisServer) -> None:
    async with RedisStore(server.url) as one, RedisStore(server.url, prefix="other"):
        assert one._client is not None
        (library,) = await one._client.function_list()
        fields = dict(zip(library[::2], library[1::2], strict=True))  # RESP2: a flat list of names and values
        assert fields[b"library_name"].startswith(b"tasker_")


async def test_a_store_entered_with_no_server_raises_store_unavailable_naming_it(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis")  # never started: nothing listens on its port
    with pytest.raises(StoreUnavailableError, match=rf"redis://127\.0\.0\.1:{server.port}/0"):
        async with RedisStore(server.url, timeout=1.0):
            pass


async def test_open_store_takes_redis_urls_and_a_key_prefix(server: RedisServer) -> None:
    lab = Lab()
    async with open_store(f"{server.url}?prefix=one") as one, Client(one) as client:
        job = await client.submit(lab.echo, 1)
        assert isinstance(one, RedisStore)
        async with open_store(f"{server.url}?prefix=two") as two:
            assert await two.info(job.id) is None  # another prefix: another store's data
        async with open_store(f"{server.url}?prefix=one") as same:
            assert (await same.info(job.id)) == await job.info()
    assert "rediss://" in repr(open_store("rediss://cache.example:6380/2"))


def test_without_redis_py_the_store_names_the_extra_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import tasker_async.durable as durable

    monkeypatch.setitem(sys.modules, "redis", None)  # as if redis-py were not installed
    for name in [name for name in sys.modules if name.startswith("tasker_async.durable._stores.redis")]:
        monkeypatch.delitem(sys.modules, name)
    with pytest.raises(ImportError, match=r"pip install 'tasker-async\[redis\]'"):
        _ = durable.RedisStore
    with pytest.raises(ImportError, match=r"tasker-async\[redis\]"):
        open_store("redis://localhost:6379/0")


def _framed(values: list[bytes | str | int]) -> bytes:
    """``values`` framed by hand: a 4-byte little-endian length, then the bytes (text as UTF-8)."""
    out = b""
    for value in values:
        data = value if isinstance(value, bytes) else str(value).encode()
        out += len(data).to_bytes(4, "little") + data
    return out


def test_a_packed_job_is_its_twelve_fields_framed() -> None:
    # What enqueue in jobs.lua reads: id, name, queue, payload, priority, has key, key, delay, once,
    # max deliveries, lease, result ttl; lengths in bytes (a key or a name may be any text).
    job = NewJob(
        id="j" * 32, name="t.naïve", queue="q:1", payload=b"[1,2]", priority=True, key="kéy", delay=0.5, once=True
    )
    fields: list[bytes | str | int] = [
        "j" * 32,
        "t.naïve",
        "q:1",
        b"[1,2]",
        "1",
        "1",
        "kéy",
        "0.5",
        "1",
        5,
        "30.0",
        "86400.0",
    ]
    assert codec.pack_job(job) == _framed(fields)
    assert codec.pack_job(NewJob(id="a", name="n", queue="default", payload=b"")).startswith(
        b"\x01\0\0\0a\x01\0\0\0n\x07\0\0\0default\0\0\0\0\x01\0\0\0" + b"0"
    )


def test_packed_outcomes_are_ten_fields_each_framed() -> None:
    # The tenth: a run step's list elements, '*' and their netstrings ('*' alone for an empty list), or nothing.
    lease = Lease("j1", "t1")
    failed = Outcome(lease=lease, state="failed", error=ErrorInfo("m.Boom", "bad: é", "Traceback..."))
    succeeded = Outcome(lease=lease, state="succeeded", result=b'{"x": 1}')
    cancelled = Outcome(lease=lease, state="cancelled")
    listed = Outcome(lease=lease, state="succeeded", result=b"[1, 22]", parts=(b"1", b"22"))
    empty = Outcome(lease=lease, state="succeeded", result=b"[]", parts=())
    expected: list[bytes | str | int] = ["j1", "t1", "failed", "0", b"", "1", "m.Boom", "bad: é", "Traceback...", ""]
    expected += ["j1", "t1", "succeeded", "1", b'{"x": 1}', "0", "", "", "", ""]
    expected += ["j1", "t1", "cancelled", "0", b"", "0", "", "", "", ""]
    expected += ["j1", "t1", "succeeded", "1", b"[1, 22]", "0", "", "", "", b"*1:12:22"]
    expected += ["j1", "t1", "succeeded", "1", b"[]", "0", "", "", "", b"*"]
    assert codec.outcomes_arg([failed, succeeded, cancelled, listed, empty]) == _framed(expected)
