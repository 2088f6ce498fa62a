"""The stores every durable test runs against: each test taking ``kit`` or ``store`` runs once per engine."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tasker_async.durable import Store

# Every store the conformance suite covers; an engine joins by adding its name here and a branch in ``_kit``.
STORES = ("memory", "sqlite")


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


def _kit(kind: str, tmp_path: Path) -> StoreKit:
    if kind == "memory":
        from tasker_async.durable import MemoryStore

        return StoreKit(kind, "memory://", False, MemoryStore)
    if kind == "sqlite":
        from tasker_async.durable import SQLiteStore

        path = tmp_path / "tasker.db"
        return StoreKit(kind, f"sqlite:///{path}", True, lambda: SQLiteStore(path))
    raise AssertionError(f"no store kit for {kind!r}")


@pytest.fixture(params=STORES)
def kit(request: pytest.FixtureRequest, tmp_path: Path) -> StoreKit:
    """One engine's store kit; the test runs once per engine."""
    return _kit(request.param, tmp_path)


@pytest.fixture
async def store(kit: StoreKit) -> AsyncIterator[Store]:
    """An entered store on fresh data, closed after the test."""
    async with kit.open() as opened:
        yield opened
