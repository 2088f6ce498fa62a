"""``open_store(url)``: each scheme opens its engine; anything else is refused with the forms that work."""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import pytest

from tasker_async import ConfigError
from tasker_async.durable import Client, JSONSerializer, MemoryStore, Registry, open_store
from tasker_async.durable._stores.records import Outcome

from .conftest import StoreKit

SUPPORTED = (
    "memory://, sqlite:///relative.db, sqlite:////absolute.db, postgresql://user@host:port/database, "
    "redis://host:port/db, rediss://host:port/db"
)

registry = Registry()


class Page:
    """The resource the tasks take first."""


@registry.task("urls.tag")
async def tag(page: Page, tags: frozenset[str]) -> frozenset[str]:
    return tags


class PickleSerializer:
    """Encodes what JSON cannot (sets, here): a serializer of the user's choice."""

    def dumps(self, value: Any) -> bytes:
        return pickle.dumps(value)

    def loads(self, data: bytes) -> Any:
        return pickle.loads(data)


def sqlite_path(store: object) -> str:
    from tasker_async.durable import SQLiteStore

    assert isinstance(store, SQLiteStore)
    return store.path


def test_memory_opens_a_new_memory_store_each_time() -> None:
    first, second = open_store("memory://"), open_store("memory://")
    assert isinstance(first, MemoryStore)
    assert isinstance(second, MemoryStore)
    assert first is not second
    assert isinstance(first.serializer, JSONSerializer)


def test_sqlite_with_three_slashes_is_relative_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert sqlite_path(open_store("sqlite:///tasker.db")) == str(tmp_path / "tasker.db")
    assert sqlite_path(open_store("sqlite:///data/jobs.db")) == str(tmp_path / "data" / "jobs.db")


def test_sqlite_with_four_slashes_is_absolute(tmp_path: Path) -> None:
    path = tmp_path / "abs.db"
    assert str(path).startswith("/")
    assert sqlite_path(open_store(f"sqlite:///{path}")) == str(path)
    assert sqlite_path(open_store("sqlite:////var/lib/tasker.db")) == os.path.abspath("/var/lib/tasker.db")


def test_a_sqlite_path_is_percent_decoded(tmp_path: Path) -> None:
    assert sqlite_path(open_store(f"sqlite:///{tmp_path}/my%20jobs%3F.db")) == str(tmp_path / "my jobs?.db")


async def test_the_url_opens_the_same_data_as_the_store(kit: StoreKit) -> None:
    opened = open_store(kit.url)
    assert type(opened) is type(kit.open())
    async with kit.open() as store, Client(store) as client:
        job = await client.submit("urls.anything", 1)
    async with opened as store, Client(store) as client:
        if kit.durable:
            assert (await client.job(job.id).info()).state == "queued"
        else:
            with pytest.raises(LookupError):
                await client.job(job.id).info()


async def test_the_serializer_reaches_the_store_and_decodes_results(kit: StoreKit) -> None:
    serializer = PickleSerializer()
    store = open_store(kit.url, serializer=serializer)
    assert store.serializer is serializer
    async with store, Client(store) as client:
        job = await client.submit(tag, frozenset({"a", "b"}))
        [claim] = await store.claim("consumer-1", ["default"], 1)
        assert serializer.loads(claim.payload) == {"args": [frozenset({"a", "b"})], "kwargs": {}}
        result = serializer.dumps(frozenset({"c"}))
        assert await store.complete([Outcome(lease=claim.hold, state="succeeded", result=result)]) == [True]
        assert await job.result(timeout=5) == frozenset({"c"})


@pytest.mark.parametrize(
    ("url", "named"),
    [
        ("amqp://user:secret@localhost:5672/", "'amqp'"),
        ("valkey://localhost", "'valkey'"),
        ("mysql://user:secret@db/tasks", "'mysql'"),
        ("http://example.com", "'http'"),
        ("tasker.db", "'tasker.db'"),
        ("", "''"),
    ],
)
def test_another_scheme_is_refused_naming_it_and_the_supported_ones(url: str, named: str) -> None:
    with pytest.raises(ConfigError) as caught:
        open_store(url)
    message = str(caught.value)
    assert named in message
    assert message.endswith(f"supported: {SUPPORTED}")
    assert "secret" not in message  # a URL may hold a password: only its scheme is shown
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize(
    ("url", "named"),
    [
        ("sqlite://host/tasker.db", "'host'"),
        ("sqlite://user@host/tasker.db", "'user@host'"),
        ("sqlite:///tasker.db?mode=ro", "'mode=ro'"),
        ("sqlite:///tasker.db#part", "'part'"),
        ("sqlite://", "starts with sqlite:///"),
        ("sqlite:///", "names a file"),
        ("sqlite:///data/", "names a file"),
        ("sqlite:tasker.db", "sqlite:///"),
        ("memory://name", "'memory://name'"),
        ("memory:///path", "'memory:///path'"),
        ("memory://?size=1", "'memory://?size=1'"),
    ],
)
def test_what_a_scheme_does_not_take_is_refused_naming_it(url: str, named: str) -> None:
    with pytest.raises(ConfigError, match=SUPPORTED) as caught:
        open_store(url)
    assert named in str(caught.value)


def test_a_url_must_be_a_str(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="str"):
        open_store(tmp_path / "tasker.db")  # type: ignore[arg-type]


def test_a_postgresql_url_sets_the_pool_size_and_keeps_it_from_the_driver() -> None:
    from tasker_async.durable import PostgresStore

    store = open_store("postgresql://app@127.0.0.1:5432/app?pool_size=2&schema=jobs&application_name=w")
    assert isinstance(store, PostgresStore)
    assert (store.pool_size, store.schema) == (2, "jobs")
    assert "pool_size" not in store.dsn
    assert "application_name=w" in store.dsn


@pytest.mark.parametrize("value", ["0", "two", ""])
def test_a_bad_pool_size_in_a_postgresql_url_is_refused_naming_it(value: str) -> None:
    with pytest.raises(ConfigError, match="pool_size"):
        open_store(f"postgresql://app@127.0.0.1:5432/app?pool_size={value}")
