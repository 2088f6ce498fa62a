"""A hypothesis state machine drives managers through random interleavings of everything a user does.

Submit, cancel a handle, break a resource, time out, ask for a retry, pile up
work so burst workers come, run ``run_task`` beside the queues, make
``on_create`` fail, let the loop run, stop, kill, and start the next
manager. After every step the invariants of SPEC §3, §6 and §8 hold:

- every accepted task ends at most once while running, exactly once after
  ``stop()``/``kill()``, and is reported to the hooks at most once (exactly
  once after shutdown);
- active workers stay within ``[0, max_worker_count]``;
- ``on_create`` results minus ``on_destroy`` calls equal the live resources:
  workers', the pool's and the temporary ones ``run_task`` holds now;
- no counter in ``stats()`` or ``metrics()`` goes negative;
- after ``stop()`` or ``kill()`` no task of the manager is left on the loop.

Each example owns an event loop (made in ``__init__``, closed in
``teardown``); each step runs the manager on it with ``run_until_complete``,
so the invariants are checked at whatever point the manager was suspended.
``on_create`` and ``on_destroy`` are counted where no suspension can fall
between the count and the manager's own bookkeeping.

The CI profile is small and derandomized; ``TASKER_STATEFUL_PROFILE=long``
runs many more and longer examples.
"""

from __future__ import annotations

import asyncio
import gc
import os
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import fields
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from tasker_async import (
    AsyncManager,
    BacklogPolicy,
    Config,
    ManagerNotRunningError,
    RetryableError,
    ScalingEvent,
    TaskEvent,
    TaskHandle,
)

from ._faults import TERMINAL, Broken, healthy_unless_broken

T = TypeVar("T")

WORKERS = 2
MAX_WORKERS = 4
POOL = 1
# An async on_destroy keeps a leaving worker's slot taken while its resource is destroyed
# (test_faults.py::test_workers_never_exceed_the_maximum_while_an_unhealthy_worker_is_being_destroyed).
ASYNC_ON_DESTROY = True

settings.register_profile(
    "tasker-stateful-ci",
    max_examples=150,
    stateful_step_count=50,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
settings.register_profile(
    "tasker-stateful-long",
    max_examples=1000,
    stateful_step_count=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
PROFILE = "tasker-stateful-long" if os.environ.get("TASKER_STATEFUL_PROFILE") == "long" else "tasker-stateful-ci"


class ManagerMachine(RuleBasedStateMachine):
    """One event loop per example; one manager at a time on it, started again after each shutdown."""

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.made = 0  # on_create results
        self.destroyed = 0  # on_destroy calls
        self.fail_next = 0  # make the next N on_create calls fail
        self.side_in_flight = 0  # run_task bodies holding a resource now
        self.callers: set[asyncio.Task[Any]] = set()  # run_task callers
        self.manager: AsyncManager[int] | None = None
        self.handles: list[TaskHandle[Any]] = []
        self.ends: Counter[int] = Counter()  # done callbacks per handle
        self.reported: Counter[int] = Counter()  # terminal events per handle
        self.scaled = asyncio.Event()
        self.gate = asyncio.Event()

    # -- plumbing ------------------------------------------------------------------

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)

    async def _wait_callers(self) -> None:
        # gather() inside a coroutine, so its future belongs to this loop.
        await asyncio.gather(*self.callers, return_exceptions=True)
        self.callers.clear()

    async def _create(self) -> int:
        await asyncio.sleep(0)
        if self.fail_next:
            self.fail_next -= 1
            raise ConnectionError("backend unavailable")
        # Counted on return: the manager records the resource with no suspension in between.
        self.made += 1
        return self.made

    def _destroy(self, resource: int) -> Awaitable[None] | None:
        # Counted on the call, which the manager makes as it stops counting the resource as live.
        self.destroyed += 1
        return asyncio.sleep(0) if ASYNC_ON_DESTROY else None

    def _hook(self, event: Any) -> None:
        if isinstance(event, TaskEvent) and event.kind in TERMINAL:
            self.reported[event.task_id] += 1
        elif isinstance(event, ScalingEvent) and event.kind == "scale_up":
            self.scaled.set()

    def _track(self, handle: TaskHandle[Any]) -> None:
        self.handles.append(handle)
        handle.add_done_callback(lambda done: self.ends.update([id(done)]))

    def _running(self) -> bool:
        return self.manager is not None and self.manager.stats().state == "running"

    async def _turns(self, count: int) -> None:
        for _ in range(count):
            await asyncio.sleep(0)

    async def _submit(self, fn: Callable[..., Awaitable[Any]], *args: Any, **options: Any) -> None:
        assert self.manager is not None
        try:
            handle = await self.manager.submit(fn, *args, **options)
        except ManagerNotRunningError:
            # Refused outright (the manager went down meanwhile): nothing was accepted.
            assert not self._running()
            return
        self._track(handle)
        await self._turns(3)

    # -- task bodies ------------------------------------------------------------------

    @staticmethod
    async def quick(resource: int, value: int) -> int:
        await asyncio.sleep(0)
        return value

    async def held(self, resource: int) -> int:
        await self.gate.wait()
        return resource

    @staticmethod
    async def breaks(resource: int, state: list[int], runs_broken: int) -> int:
        state[0] += 1
        await asyncio.sleep(0)
        if state[0] <= runs_broken:
            raise Broken(f"run {state[0]}")
        return resource

    @staticmethod
    async def asks_retry(resource: int, state: list[int], runs_retried: int) -> int:
        state[0] += 1
        if state[0] <= runs_retried:
            raise RetryableError("again", retry_after=0)
        return resource

    @staticmethod
    async def own_error(resource: int) -> None:
        await asyncio.sleep(0)
        raise LookupError("not found")

    @staticmethod
    async def forever(resource: int) -> None:
        await asyncio.Event().wait()

    async def side(self, resource: int, breaks: bool) -> int:
        self.side_in_flight += 1
        try:
            await asyncio.sleep(0)
            if breaks:
                raise Broken("pooled resource went bad")
            return resource
        finally:
            self.side_in_flight -= 1

    # -- lifecycle rules ------------------------------------------------------------------

    @initialize()
    def start_first(self) -> None:
        self._start()

    def _start(self) -> None:
        self.gate = asyncio.Event()
        self.scaled = asyncio.Event()
        manager = AsyncManager(
            Config(
                on_create=self._create,
                on_destroy=self._destroy,
                worker_count=WORKERS,
                max_worker_count=MAX_WORKERS,
                resource_pool_size=POOL,
                burst_interval=0.002,
                scaling_policy=BacklogPolicy(threshold=2, step=1, cooldown=0, idle_grace=0),
                check_health=healthy_unless_broken,
                max_retries=2,
                hooks=[self._hook],
            )
        )
        self.fail_next = 0
        self.run(manager.start())
        self.manager = manager

    @precondition(lambda self: not self._running())
    @rule()
    def start_next(self) -> None:
        self._start()

    @precondition(lambda self: self._running())
    @rule(release=st.booleans())
    def stop(self, release: bool) -> None:
        assert self.manager is not None
        if release:
            self.gate.set()
            self.run(self.manager.stop())
        else:
            # Held tasks never finish: stop() escalates to kill() after its timeout.
            self.run(self.manager.stop(timeout=0.01))
        self._after_shutdown()

    @precondition(lambda self: self._running())
    @rule()
    def kill(self) -> None:
        assert self.manager is not None
        self.run(self.manager.kill())
        self._after_shutdown()

    def _after_shutdown(self) -> None:
        assert self.manager is not None
        state = self.manager.stats().state
        assert state in ("stopped", "killed"), state
        self.run(self._wait_callers())
        self.run(self._turns(2))  # done callbacks of the last tasks
        for handle in self.handles:
            assert handle.done(), f"{handle!r} never ended"
            if not handle.cancelled():
                handle.exception()  # retrieved: no "exception was never retrieved" noise
            assert self.ends[id(handle)] == 1, f"{handle!r} ended {self.ends[id(handle)]} times"
            assert self.reported[id(handle)] == 1, f"{handle!r} reported {self.reported[id(handle)]} times"
        self.handles.clear()
        self.ends.clear()
        self.reported.clear()
        assert self.made == self.destroyed, (self.made, self.destroyed)
        stats = self.manager.stats()
        assert (stats.active_workers, stats.burst_workers, stats.available_resources) == (0, 0, 0), stats
        assert (stats.queued_tasks, stats.priority_tasks, stats.running_tasks) == (0, 0, 0), stats
        assert not asyncio.all_tasks(self.loop), asyncio.all_tasks(self.loop)

    # -- work rules ------------------------------------------------------------------

    @precondition(lambda self: self._running())
    @rule(value=st.integers(0, 1000), priority=st.booleans())
    def submit(self, value: int, priority: bool) -> None:
        self.run(self._submit(self.quick, value, priority=priority))

    @precondition(lambda self: self._running())
    @rule(count=st.integers(1, 4), priority=st.booleans())
    def submit_held(self, count: int, priority: bool) -> None:
        for _ in range(count):
            self.run(self._submit(self.held, priority=priority))

    @precondition(lambda self: self._running())
    @rule()
    def release_held(self) -> None:
        self.gate.set()
        self.gate = asyncio.Event()  # later held tasks wait on a new gate
        self.run(self._turns(10))

    # Not "some handle is open": preconditions must not depend on timing, or hypothesis cannot replay.
    @precondition(lambda self: bool(self.handles))
    @rule(pick=st.integers(0, 10_000))
    def cancel(self, pick: int) -> None:
        self.run(self._cancel(pick))

    async def _cancel(self, pick: int) -> None:
        # Inside the loop (see test_faults.py::test_a_running_task_can_be_cancelled_between_loop_runs),
        # and picked there: a handle open before the loop ran may have finished since.
        open_handles = [h for h in self.handles if not h.done()]
        if open_handles:
            assert open_handles[pick % len(open_handles)].cancel()
        await self._turns(2)

    @precondition(lambda self: self._running())
    @rule(runs_broken=st.integers(1, 3), once=st.booleans())
    def unhealthy(self, runs_broken: int, once: bool) -> None:
        # max_retries=2: three broken runs exhaust them (MaxRetriesExceededError).
        self.run(self._submit(self.breaks, [0], runs_broken, once=once))

    @precondition(lambda self: self._running())
    @rule(runs_retried=st.integers(1, 3))
    def retryable(self, runs_retried: int) -> None:
        self.run(self._submit(self.asks_retry, [0], runs_retried))

    @precondition(lambda self: self._running())
    @rule()
    def healthy_error(self) -> None:
        self.run(self._submit(self.own_error))

    @precondition(lambda self: self._running())
    @rule()
    def timeout(self) -> None:
        self.run(self._submit(self.forever, timeout=0.002))

    @precondition(lambda self: self._running())
    @rule(count=st.integers(3, 8))
    def scale(self, count: int) -> None:
        """Pile held work above the backlog threshold, and give the supervisor a chance to add a worker."""
        for _ in range(count):
            self.run(self._submit(self.held))
        assert self.manager is not None
        if self.manager.stats().burst_workers < MAX_WORKERS - WORKERS:
            self.scaled.clear()
            waiter = self.loop.create_task(self.scaled.wait())
            # Bounded: the supervisor may see no room (a base worker being replaced takes a slot).
            self.run(asyncio.wait({waiter}, timeout=0.05))
            waiter.cancel()
            self.run(asyncio.wait({waiter}))

    @precondition(lambda self: self._running())
    @rule(breaks=st.booleans())
    def run_task(self, breaks: bool) -> None:
        assert self.manager is not None
        self.callers.add(self.loop.create_task(self.manager.run_task(self.side, breaks)))
        self.run(self._turns(2))

    @precondition(lambda self: self._running())
    @rule(failures=st.integers(1, 2))
    def creation_fails(self, failures: int) -> None:
        self.fail_next = failures

    @rule(turns=st.integers(1, 50))
    def let_it_run(self, turns: int) -> None:
        self.run(self._turns(turns))

    # -- invariants ------------------------------------------------------------------

    @invariant()
    def each_task_ends_at_most_once(self) -> None:
        assert all(n <= 1 for n in self.ends.values()), self.ends
        assert all(n <= 1 for n in self.reported.values()), self.reported

    @invariant()
    def workers_within_bounds(self) -> None:
        if self.manager is None:
            return
        stats = self.manager.stats()
        assert 0 <= stats.active_workers <= MAX_WORKERS, stats
        assert 0 <= stats.burst_workers <= MAX_WORKERS - WORKERS, stats
        assert stats.running_tasks <= stats.active_workers, stats

    @invariant()
    def resources_balance(self) -> None:
        if self.manager is None:
            return
        stats = self.manager.stats()
        live = stats.active_workers + stats.available_resources + self.side_in_flight
        assert self.made - self.destroyed == live, (self.made, self.destroyed, stats, self.side_in_flight)

    @invariant()
    def no_counter_is_negative(self) -> None:
        if self.manager is None:
            return
        stats = self.manager.stats()
        for f in fields(stats):
            value = getattr(stats, f.name)
            if isinstance(value, (int, float)):
                assert value >= 0, (f.name, stats)
        metrics = self.manager.metrics()
        for f in fields(metrics):
            value = getattr(metrics, f.name)
            assert value >= 0, (f.name, metrics)
        assert 0 <= metrics.success_rate <= 1, metrics
        # Nothing waits in a queue that its caller has given up on.
        waiting = stats.queued_tasks + stats.priority_tasks
        assert waiting <= sum(not h.done() for h in self.handles), stats

    def teardown(self) -> None:
        try:
            if self.manager is not None:
                self.gate.set()
                self.run(asyncio.wait_for(self.manager.kill(), 10))
                self.run(self._wait_callers())
            for handle in self.handles:
                if handle.done() and not handle.cancelled():
                    handle.exception()
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        finally:
            self.loop.close()


@pytest.fixture(autouse=True)
def _collect_garbage_first() -> None:
    """Finalize what earlier tests left (futures, loops) before hypothesis parses this file.

    Hypothesis reads this module's source (``inspect.getsource``, an ``ast.parse``) when the
    test starts. On CPython 3.11.7 a garbage collection inside that parse whose finalizers log a
    traceback (which parses source again, for its ``^^^`` marks) fails it with "SystemError: AST
    constructor recursion depth mismatch".
    """
    gc.collect()


TestManagerMachine = ManagerMachine.TestCase
TestManagerMachine.settings = settings.get_profile(PROFILE)
