"""Shared fixtures: resource trackers and managers that are always shut down."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from tasker_async import AsyncManager, Config, LifecycleEvent, ScalingSnapshot


@dataclass
class Resource:
    """A fake connection: an id, and whether it was closed."""

    id: int
    closed: bool = False


@dataclass
class Tracker:
    """Counts every on_create / on_destroy call; makes ``Resource`` objects."""

    created: list[Resource] = field(default_factory=list)
    destroyed: list[Resource] = field(default_factory=list)
    fail_next: int = 0  # make the next N on_create calls fail
    _ids: Any = field(default_factory=lambda: itertools.count())
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    def create(self) -> Resource:
        if self.fail_next:
            self.fail_next -= 1
            self._changed.set()
            raise ConnectionError("backend unavailable")
        resource = Resource(next(self._ids))
        self.created.append(resource)
        self._changed.set()
        return resource

    async def destroy(self, resource: Resource) -> None:
        assert not resource.closed, f"{resource} destroyed twice"
        resource.closed = True
        self.destroyed.append(resource)
        self._changed.set()

    @property
    def live(self) -> int:
        return len(self.created) - len(self.destroyed)

    def balanced(self) -> bool:
        return sorted(r.id for r in self.created) == sorted(r.id for r in self.destroyed)

    async def wait_until(self, predicate: Callable[[], bool]) -> None:
        """Wait (without polling on time) until ``predicate()`` holds after a create/destroy."""
        while not predicate():
            self._changed.clear()
            await self._changed.wait()


def scaling_snapshot(**fields: Any) -> ScalingSnapshot:
    """A ScalingSnapshot of an idle pool of 2 base workers (6 at most) at t=100, with ``fields`` changed."""
    idle: dict[str, Any] = {
        "now": 100.0,
        "queued": 0,
        "running": 0,
        "active_workers": 2,
        "starting_workers": 0,
        "base_workers": 2,
        "max_workers": 6,
        "burst_workers": 0,
        "idle_burst": (),
        "arrival_rate": 0.0,
        "completion_rate": 0.0,
        "arrivals_in_window": 0,
    }
    return ScalingSnapshot(**{**idle, **fields})


def make_config(tracker: Tracker, **options: Any) -> Config[Resource]:
    """A Config on ``tracker``'s resources: two workers, no bursting, no side pool unless asked."""
    options.setdefault("on_create", tracker.create)
    options.setdefault("on_destroy", tracker.destroy)
    options.setdefault("worker_count", 2)
    # No bursting unless a test asks for it: worker counts stay exact.
    options.setdefault("max_worker_count", options["worker_count"])
    options.setdefault("resource_pool_size", 0)
    return Config(**options)


@pytest.fixture
def tracker() -> Tracker:
    return Tracker()


@pytest.fixture
async def make_manager(tracker: Tracker) -> AsyncIterator[Callable[..., AsyncManager[Resource]]]:
    """Build managers on ``tracker``; every one is killed at teardown and checked balanced."""
    managers: list[AsyncManager[Resource]] = []

    def build(**options: Any) -> AsyncManager[Resource]:
        manager = AsyncManager(make_config(tracker, **options))
        managers.append(manager)
        return manager

    yield build
    for manager in managers:
        await manager.kill()
    assert tracker.balanced(), f"created {tracker.created}, destroyed {tracker.destroyed}"


class EventLog:
    """A lifecycle hook that keeps every event and lets a test wait for a condition."""

    def __init__(self) -> None:
        self.events: list[LifecycleEvent] = []
        self.changed = asyncio.Event()

    def __call__(self, event: LifecycleEvent) -> None:
        self.events.append(event)
        self.changed.set()

    def of(self, event_type: type[Any], **match: Any) -> list[Any]:
        """The events of ``event_type`` whose fields equal ``match``."""
        return [
            e
            for e in self.events
            if isinstance(e, event_type) and all(getattr(e, name) == value for name, value in match.items())
        ]

    async def until(self, predicate: Callable[[], bool]) -> None:
        """Wait, event by event, until ``predicate()`` holds."""
        while not predicate():
            self.changed.clear()
            await self.changed.wait()


def manager_tasks() -> set[asyncio.Task[Any]]:
    """Tasks on the loop other than the test's own."""
    return {task for task in asyncio.all_tasks() if task is not asyncio.current_task()}


async def wait_for(predicate: Callable[[], bool], *, turns: int = 1_000_000) -> None:
    """Yield to the loop until ``predicate()`` holds, failing after ``turns`` loop turns.

    For states reached within a few loop iterations (a worker picking a task
    up); longer waits use events. The bound matters: pytest-timeout's signal
    can land inside a callback the loop runs and be swallowed there, so a
    busy wait must end by itself.
    """
    # One loop turn at a time, never a timed wait.
    for _ in range(turns):
        if predicate():
            return
        await asyncio.sleep(0)
    raise AssertionError(f"condition still false after {turns} loop turns")
