"""The stores every durable test runs against: each test taking ``kit`` or ``store`` runs once per engine."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tasker_async.durable import Client, Store, open_store

from .cli_procs import Workers, workers
from .servers.postgres_server import PostgresServer, running
from .servers.redis_server import RedisServer

# Every store the conformance suite covers; an engine joins by adding its name here and a branch in ``_kit``.
STORES = ("memory", "sqlite", "redis", "postgres")


@dataclass(frozen=True)
class StoreKit:
    """How to open one engine's store for a test.

    Attributes:
        kind: the engine's name (a ``STORES`` entry).
        url: what ``open_store`` and the CLI take for the same data.
        durable: whether a store opened again (``open()``) sees what an earlier one stored.
    """

    kind: str
    url: str
    durable: bool
    factory: Callable[[], Store]

    def open(self) -> Store:
        """A new, not yet entered, store object on this test's data."""
        return self.factory()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One real Redis server for the session (tests keep apart by key prefix); stopped at the end."""
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One real PostgreSQL server for the session (each test takes a fresh schema); stopped and deleted at the end."""
    with running() as server:
        yield server


def _kit(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> StoreKit:
    if kind == "memory":
        from tasker_async.durable import MemoryStore

        return StoreKit(kind, "memory://", False, MemoryStore)
    if kind == "sqlite":
        from tasker_async.durable import SQLiteStore

        path = tmp_path / "tasker.db"
        return StoreKit(kind, f"sqlite:///{path}", True, lambda: SQLiteStore(path))
    if kind == "redis":
        from tasker_async.durable import RedisStore

        server: RedisServer = request.getfixturevalue("redis_server")
        # A fresh key prefix per test: the session's one server, yet no test sees another's data.
        prefix = f"test-{uuid.uuid4().hex[:12]}"
        url = f"{server.url}?prefix={prefix}"
        return StoreKit(kind, url, True, lambda: RedisStore(server.url, prefix=prefix))
    if kind == "postgres":
        from tasker_async.durable import PostgresStore

        postgres: PostgresServer = request.getfixturevalue("postgres_server")
        # A fresh schema per test: the session's one server, yet no test sees another's tables.
        schema = f"test_{uuid.uuid4().hex[:12]}"
        url = f"{postgres.dsn}?schema={schema}"
        return StoreKit(kind, url, True, lambda: PostgresStore(postgres.dsn, schema=schema))
    raise AssertionError(f"no store kit for {kind!r}")


@pytest.fixture(params=STORES)
def kit(request: pytest.FixtureRequest, tmp_path: Path) -> StoreKit:
    """One engine's store kit; the test runs once per engine."""
    return _kit(request.param, tmp_path, request)


@pytest.fixture(params=[kind for kind in STORES if kind != "memory"])
def durable_kit(request: pytest.FixtureRequest, tmp_path: Path) -> StoreKit:
    """The kit of one engine whose data outlives a process (every store but memory); once per engine."""
    return _kit(request.param, tmp_path, request)


@pytest.fixture
async def store(kit: StoreKit) -> AsyncIterator[Store]:
    """An entered store on fresh data, closed after the test."""
    async with kit.open() as opened:
        yield opened


# -- worker processes on a SQLite file of the test's folder (the CLI, crash and health tests)


@pytest.fixture
def url(tmp_path: Path) -> str:
    """The store URL of a SQLite file in the test's folder."""
    return f"sqlite:///{tmp_path / 'tasker.db'}"


@pytest.fixture
async def client(url: str) -> AsyncIterator[Client]:
    """A client of the store at ``url``."""
    async with open_store(url) as store, Client(store) as opened:
        yield opened


@pytest.fixture
def procs(tmp_path: Path, url: str) -> Iterator[Workers]:
    """Starts worker processes on ``url``; every one still running is killed at the end."""
    with workers(tmp_path, url) as started:
        yield started
