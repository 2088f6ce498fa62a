"""Helpers shared by the fault-injection and stateful tests: ledgers of outcomes, gates, clean-up checks."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterable
from typing import Any

from tasker_async import AsyncManager, MaxRetriesExceededError, TaskAbortedError, TaskEvent, TaskHandle

from .conftest import EventLog, Resource, Tracker, manager_tasks

# A task's last event: exactly one of these per accepted task.
TERMINAL = frozenset({"succeeded", "failed", "timed_out", "aborted", "cancelled"})


class Broken(Exception):
    """The resource is bad: ``check_health`` says so."""


def healthy_unless_broken(exc: BaseException) -> bool:
    return not isinstance(exc, Broken)


class Gate:
    """Holds whoever awaits it until released, and tells how many are waiting."""

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self.release = asyncio.Event()
        self.entries = 0

    async def pass_(self) -> None:
        self.entries += 1
        self.entered.set()
        await self.release.wait()


def outcome(handle: asyncio.Future[Any]) -> str:
    """A done handle's outcome in one word: ``result``, ``cancelled`` or its exception's type name."""
    assert handle.done(), f"{handle!r} is not done"
    if handle.cancelled():
        return "cancelled"
    exc = handle.exception()
    return "result" if exc is None else type(exc).__name__


class Ledger:
    """Every handle a test accepted, and how many times each one ended (must be once)."""

    def __init__(self) -> None:
        self.handles: list[TaskHandle[Any]] = []
        self.ends: Counter[int] = Counter()

    def add(self, handle: TaskHandle[Any]) -> TaskHandle[Any]:
        self.handles.append(handle)
        handle.add_done_callback(self._ended)
        return handle

    def _ended(self, handle: asyncio.Future[Any]) -> None:
        self.ends[id(handle)] += 1
        if not handle.cancelled():
            handle.exception()  # retrieved: a test that fails midway leaves no "never retrieved" noise

    def open(self) -> list[TaskHandle[Any]]:
        return [h for h in self.handles if not h.done()]

    def outcomes(self) -> Counter[str]:
        return Counter(outcome(h) for h in self.handles)

    def assert_each_ended_once(self) -> None:
        assert not self.open(), f"never ended: {self.open()}"
        twice = [h for h in self.handles if self.ends[id(h)] != 1]
        assert not twice, f"done callbacks not called exactly once: {twice}"


class Terminals(EventLog):
    """A hook that counts each task's terminal events by ``task_id`` (a handle's ``id``)."""

    def ends(self) -> Counter[int]:
        return Counter(e.task_id for e in self.events if isinstance(e, TaskEvent) and e.kind in TERMINAL)

    def kinds(self, handle: TaskHandle[Any]) -> list[str]:
        return [
            e.kind for e in self.events if isinstance(e, TaskEvent) and e.kind in TERMINAL and e.task_id == id(handle)
        ]

    def assert_each_reported_once(self, handles: Iterable[TaskHandle[Any]]) -> None:
        ends = self.ends()
        wrong = {repr(h): self.kinds(h) for h in handles if ends[id(h)] != 1}
        assert not wrong, f"terminal events per task should be exactly one: {wrong}"


# The terminal event a handle's outcome is reported as.
EXPECTED_KIND = {
    "result": "succeeded",
    "cancelled": "cancelled",
    TaskAbortedError.__name__: "aborted",
    MaxRetriesExceededError.__name__: "failed",
    "TaskTimeoutError": "timed_out",
}


def assert_down(manager: AsyncManager[Any], tracker: Tracker | None = None, *, state: str | None = None) -> None:
    """The manager is over: nothing queued, running or held, resources balanced, no task of it left."""
    stats = manager.stats()
    assert stats.state in (("stopped", "killed") if state is None else (state,)), stats
    counts = (stats.active_workers, stats.burst_workers, stats.queued_tasks, stats.priority_tasks)
    assert counts == (0, 0, 0, 0), stats
    assert (stats.running_tasks, stats.available_resources) == (0, 0), stats
    if tracker is not None:
        assert tracker.balanced(), f"created {tracker.created}, destroyed {tracker.destroyed}"
    assert not manager_tasks(), manager_tasks()


async def echo(resource: Resource, value: Any) -> tuple[int, Any]:
    return resource.id, value


async def forever(resource: Resource) -> None:
    """A task that never returns by itself."""
    await asyncio.Event().wait()
