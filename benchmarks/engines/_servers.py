"""The engines the benchmarks run on: a local Redis server, a local PostgreSQL server, each fresh per run.

Both come from the test suite's servers (``tests/durable/servers``): a ``valkey-server`` (the ``test``
extra's) or ``redis-server`` on a free loopback port with its data in a temp dir, appendonly with
``appendfsync always``, and a PostgreSQL cluster in a temp dir with ``fsync`` and ``synchronous_commit`` on.

- Redis: one server for the whole benchmark; ``--fsync everysec`` switches it to ``appendfsync everysec``
  (``CONFIG SET`` once started). Each run starts on an empty server: ``FLUSHALL``, then an AOF rewrite
  (awaited) so no rewrite of an earlier run's log falls into a later run's timing.
- PostgreSQL: one server for the whole benchmark; each run gets a database of its own
  (``CREATE DATABASE``), dropped after the run.
"""

from __future__ import annotations

import itertools
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractAsyncContextManager, AbstractContextManager, asynccontextmanager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import anyio

from tests.durable.servers.postgres_server import running
from tests.durable.servers.redis_server import RedisServer

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ("FSYNC", "EngineServer", "postgres_engine", "redis_engine", "sqlite_engine", "start_engine")

FSYNC = ("always", "everysec")  # Redis appendfsync policies the benchmark offers
REWRITE_LIMIT = 60.0  # seconds an AOF rewrite of an emptied server may take


class EngineServer(Protocol):
    """A running engine: what the tables say it is, and a fresh, empty place to run in."""

    @property
    def engine(self) -> str:
        """``"redis"`` or ``"postgres"``."""
        ...

    def describe(self) -> str:
        """The server and its durability settings, as the tables state them."""
        ...

    def fresh(self) -> AbstractAsyncContextManager[str]:
        """The URL of an empty store for one run (emptied or dropped on the way out, as the engine does)."""
        ...


class _Redis:
    engine = "redis"

    def __init__(self, server: RedisServer, fsync: str) -> None:
        self._server = server
        self._fsync = fsync
        self._version = ""

    async def configure(self) -> None:
        from redis.asyncio import Redis

        client = Redis.from_url(self._server.url)
        try:
            await client.config_set("appendfsync", self._fsync)
            info = await client.info("server")
            name = "valkey" if "valkey_version" in info else "redis"
            self._version = f"{name}-server {info.get('valkey_version') or info.get('redis_version')}"
        finally:
            await client.aclose()

    def describe(self) -> str:
        return f"{self._version}, appendonly yes, appendfsync {self._fsync}"

    @asynccontextmanager
    async def fresh(self) -> AsyncIterator[str]:
        from redis.asyncio import Redis

        client = Redis.from_url(self._server.url)
        try:
            await client.flushall()
            await _rewrite_aof(client)
        finally:
            await client.aclose()
        yield self._server.url


async def _rewrite_aof(client: Redis) -> None:
    """Rewrite the AOF of the emptied server and wait until the rewrite is over."""
    with anyio.fail_after(REWRITE_LIMIT):
        await _rewrite_over(client)  # one the server started itself must end first
        await client.bgrewriteaof()
        await _rewrite_over(client)


async def _rewrite_over(client: Redis) -> None:
    """Return once no AOF rewrite is running or scheduled (the server says no event when one ends)."""
    while True:
        info = await client.info("persistence")
        if not info.get("aof_rewrite_in_progress") and not info.get("aof_rewrite_scheduled"):
            return
        await anyio.sleep(0.02)


class _Postgres:
    engine = "postgres"

    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._numbers = itertools.count(1)
        self._version = ""

    async def configure(self) -> None:
        import asyncpg

        connection = await asyncpg.connect(self._dsn)
        try:
            version = await connection.fetchval("SHOW server_version")
            settings = await connection.fetch(
                "SELECT name, setting FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit')"
            )
        finally:
            await connection.close()
        shown = ", ".join(f"{row['name']} {row['setting']}" for row in settings)
        self._version = f"PostgreSQL {str(version).split()[0]}, {shown}"

    def describe(self) -> str:
        return self._version

    @asynccontextmanager
    async def fresh(self) -> AsyncIterator[str]:
        import asyncpg

        name = f"bench_{next(self._numbers)}"
        connection = await asyncpg.connect(self._dsn)
        try:
            await connection.execute(f"CREATE DATABASE {name}")
        finally:
            await connection.close()
        try:
            yield self._dsn.rsplit("/", 1)[0] + f"/{name}"
        finally:
            with anyio.CancelScope(shield=True):
                connection = await asyncpg.connect(self._dsn)
                try:
                    await connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
                finally:
                    await connection.close()


@contextmanager
def redis_engine(fsync: str = "always") -> Iterator[EngineServer]:
    """A Redis server for the benchmark, with ``appendfsync`` set to ``fsync``; stopped on the way out."""
    if fsync not in FSYNC:
        raise ValueError(f"fsync must be one of {FSYNC}, got {fsync!r}")
    with tempfile.TemporaryDirectory(prefix="tasker-bench-redis-") as folder:
        server = RedisServer(Path(folder))
        server.start()
        try:
            engine = _Redis(server, fsync)
            anyio.run(engine.configure)
            yield engine
        finally:
            server.stop()


@contextmanager
def postgres_engine() -> Iterator[EngineServer]:
    """A PostgreSQL server for the benchmark (fsync on); stopped and deleted on the way out."""
    with running() as server:
        engine = _Postgres(server.dsn)
        anyio.run(engine.configure)
        yield engine


class _SQLite:
    engine = "sqlite"

    def __init__(self, folder: Path) -> None:
        self._folder = folder
        self._numbers = itertools.count(1)

    def describe(self) -> str:
        import sqlite3

        return f"SQLite {sqlite3.sqlite_version}, WAL, synchronous FULL"

    @asynccontextmanager
    async def fresh(self) -> AsyncIterator[str]:
        await anyio.lowlevel.checkpoint()
        yield f"sqlite:///{self._folder / f'bench-{next(self._numbers)}.db'}"


@contextmanager
def sqlite_engine() -> Iterator[EngineServer]:
    """A folder for the benchmark's SQLite files (the embedded store has no server); deleted on the way out."""
    with tempfile.TemporaryDirectory(prefix="tasker-bench-sqlite-") as folder:
        yield _SQLite(Path(folder))


def start_engine(engine: str, *, fsync: str = "always") -> AbstractContextManager[EngineServer]:
    """The server of ``engine`` (``"redis"``, ``"postgres"`` or ``"sqlite"``), to enter."""
    if engine == "sqlite":
        return sqlite_engine()
    if engine == "redis":
        return redis_engine(fsync)
    if engine == "postgres":
        return postgres_engine()
    raise ValueError(f"unknown engine {engine!r}")
