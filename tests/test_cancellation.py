"""Cancellation at every await point of the public API (SPEC §3 "Caller cancellation", §8).

A caller may give up at any moment: while ``submit`` waits for room, while its
task is queued, delayed for a retry or running, while ``run_task`` makes or
uses a resource, while ``stop()`` or ``kill()`` waits for the shutdown, or in
the middle of an ``async with`` block. Whatever the moment, the task never
runs (or its run is cancelled), the worker keeps its resource, every other
caller still gets exactly one outcome, and once the manager is down no task
of it is left on the loop and every resource made was destroyed.

Every test synchronizes on events and on states the manager reports; a
deadline (``asyncio.wait_for``, ``anyio.move_on_after``, ``stop(timeout=)``)
is only used to cancel something that cannot finish before it.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from typing import Any, TypeVar

import anyio
import pytest

from tasker_async import AsyncManager, ManagerNotRunningError, TaskAbortedError, TaskHandle
from tasker_async._core.queue import JobQueue

from .conftest import Resource, Tracker, manager_tasks, wait_for

Factory = Callable[..., AsyncManager[Resource]]
T = TypeVar("T")

# Ways a caller gives up on a task it queued. The first five work on a task
# that is queued, delayed or running; the last two put a deadline on
# ``queue_task`` itself, which is deterministic only while the task cannot
# start (its worker is held).
RUNNING_WAYS = ("task.cancel", "awaiter.cancel", "handle.cancel", "asyncio.wait_for", "anyio.move_on_after")
QUEUED_WAYS = (*RUNNING_WAYS, "asyncio.wait_for(queue_task)", "anyio.move_on_after(queue_task)")
# Ways to cancel a caller from outside: a native task cancel, or an anyio
# cancel scope (what ``move_on_after`` does at its deadline).
CALLER_WAYS = ("task.cancel", "cancel scope")


@pytest.fixture(autouse=True)
async def _no_task_left_behind() -> AsyncIterator[None]:
    """After every test (and after ``make_manager`` killed its managers) nothing is left on the loop."""
    yield
    assert not manager_tasks()


@pytest.fixture
def holds(make_manager: Factory) -> Iterator[Callable[[], asyncio.Event]]:
    """Make events that hold an ``on_create`` or ``on_destroy`` call.

    All are set at teardown before ``make_manager`` kills its managers, so a
    failing test cannot leave its teardown waiting for ever.
    """
    events: list[asyncio.Event] = []

    def hold() -> asyncio.Event:
        events.append(asyncio.Event())
        return events[-1]

    yield hold
    for event in events:
        event.set()


# -- task bodies ------------------------------------------------------------------------


class Broken(Exception):
    """The resource is bad."""


def healthy_unless_broken(exc: BaseException) -> bool:
    return not isinstance(exc, Broken)


async def echo(resource: Resource, value: Any) -> tuple[int, Any]:
    return resource.id, value


class Gate:
    """A task body that holds its worker until released."""

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self.release = asyncio.Event()

    async def __call__(self, resource: Resource) -> str:
        self.entered.set()
        await self.release.wait()
        return "gate"


class Blocker:
    """A task body that runs until cancelled, recording its resources and its cancellation."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.cancelled = asyncio.Event()
        self.resources: list[Resource] = []

    async def __call__(self, resource: Resource) -> None:
        self.resources.append(resource)
        self.started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled.set()
            raise


class Recorder:
    """A task body that records the resource id of each run; for tasks that must never run."""

    def __init__(self) -> None:
        self.runs: list[int] = []

    async def __call__(self, resource: Resource) -> str:
        self.runs.append(resource.id)
        return "ran"


# -- helpers -------------------------------------------------------------------------------


async def start_suspended(call: Callable[[], Awaitable[T]]) -> asyncio.Task[T]:
    """Run ``call()`` in a new task; return once that task is suspended in it.

    The new task sets an event and goes straight on into ``call()``; this
    task wakes from the event only after that step ended, that is once the
    new task waits inside ``call()`` (parked for room, awaiting its handle...).
    """
    entered = asyncio.Event()

    async def run() -> T:
        entered.set()
        return await call()

    task = asyncio.create_task(run())
    await entered.wait()
    return task


async def cancel_task(
    manager: AsyncManager[Resource],
    fn: Callable[[Resource], Awaitable[Any]],
    how: str,
    *,
    ready: Callable[[], Awaitable[object]] | None = None,
    check: Callable[[], None] | None = None,
    **options: Any,
) -> None:
    """Queue ``fn`` and give up on it the ``how`` way, asserting the caller sees the cancellation.

    The cancellation comes once ``ready()`` returned (at once without it);
    ``check()`` runs just before it, where the test controls that moment.
    """
    if how == "asyncio.wait_for(queue_task)":
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(manager.queue_task(fn, **options), 0.01)
        return
    if how == "anyio.move_on_after(queue_task)":
        with anyio.move_on_after(0.01) as scope:
            await manager.queue_task(fn, **options)
        assert scope.cancelled_caught
        return

    async def when_ready() -> None:
        if ready is not None:
            await ready()
        if check is not None:
            check()

    if how == "task.cancel":
        caller = await start_suspended(lambda: manager.queue_task(fn, **options))
        await when_ready()
        caller.cancel()
        with pytest.raises(asyncio.CancelledError):
            await caller
        return
    handle = await manager.submit(fn, **options)
    await when_ready()
    if how == "handle.cancel":
        assert handle.cancel()
        assert not handle.cancel()
        with pytest.raises(asyncio.CancelledError):
            await handle
    elif how == "awaiter.cancel":
        awaiter = await start_suspended(lambda: handle)
        awaiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await awaiter
    elif how == "asyncio.wait_for":
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(handle, 0.01)
    elif how == "anyio.move_on_after":
        with anyio.move_on_after(0.01) as scope:
            await handle
        assert scope.cancelled_caught
    else:
        raise AssertionError(f"unknown way to cancel: {how}")
    assert handle.cancelled()


async def cancel_call(how: str, call: Callable[[], Coroutine[Any, Any, object]], ready: asyncio.Event) -> None:
    """Run ``call()`` in a new task and cancel it the ``how`` way once ``ready`` is set."""
    if how == "task.cancel":
        task = asyncio.create_task(call())
        await ready.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return
    scope = anyio.CancelScope()

    async def in_scope() -> None:
        with scope:
            await call()

    task = asyncio.create_task(in_scope())
    await ready.wait()
    scope.cancel()
    await task
    assert scope.cancelled_caught


def outcome(task: asyncio.Task[Any]) -> Any:
    """What a finished caller got: ``"cancelled"``, the exception it raised, or its result."""
    if task.cancelled():
        return "cancelled"
    return task.exception() or task.result()


def lane_length(manager: AsyncManager[Resource], priority: bool) -> int:
    stats = manager.stats()
    return stats.priority_tasks if priority else stats.queued_tasks


# -- submit and queue_task waiting for room -----------------------------------------------


@pytest.mark.parametrize("priority", [False, True], ids=["main", "priority"])
@pytest.mark.parametrize("call", ["submit", "queue_task"])
async def test_a_caller_cancelled_while_waiting_for_room_queues_nothing(
    make_manager: Factory, call: str, priority: bool
) -> None:
    gate = Gate()
    never = Recorder()
    async with make_manager(worker_count=1, max_queue_size=1) as manager:
        held = await manager.submit(gate)
        await gate.entered.wait()
        filler = await manager.submit(echo, "filler", priority=priority)
        submit = getattr(manager, call)
        waiting = await start_suspended(lambda: submit(never, priority=priority))
        later = await start_suspended(lambda: manager.submit(echo, "later", priority=priority))
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        assert lane_length(manager, priority) == 1
        assert manager.metrics().total_tasks_arrived == 2
        assert not later.done()
        # The worker takes the filler; the room it frees goes to the submitter still waiting.
        gate.release.set()
        late = await later
        assert [await held, (await filler)[1], (await late)[1]] == ["gate", "filler", "later"]
    assert never.runs == []
    assert manager.metrics().total_tasks_arrived == 3
    assert manager.metrics().total_tasks_completed == 3


async def test_a_submitter_woken_for_room_then_cancelled_passes_the_room_on(make_manager: Factory) -> None:
    gate = Gate()
    never = Recorder()
    async with make_manager(worker_count=1, max_queue_size=1) as manager:
        held = await manager.submit(gate)
        await gate.entered.wait()
        filler = await manager.submit(never)
        first = await start_suspended(lambda: manager.submit(never))
        second = await start_suspended(lambda: manager.submit(echo, "second"))
        # In one step: the filler leaves the queue, which wakes `first`, and
        # `first` is cancelled before it could take the room. The wake-up
        # must reach `second`, or it waits for ever.
        assert filler.cancel()
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        handle = await second
        assert manager.stats().queued_tasks == 1
        gate.release.set()
        assert (await handle)[1] == "second"
        assert await held == "gate"
    assert never.runs == []


@pytest.mark.parametrize("spare", [False, True], ids=["base", "burst"])
async def test_a_parked_worker_woken_then_cancelled_passes_the_wake_up_on(spare: bool) -> None:
    queue: JobQueue[str] = JobQueue(0)
    woken: list[str] = []

    async def park(name: str) -> None:
        # What a worker does (_worker._serve) when it runs out of tasks.
        waiter = queue.park(spare)
        try:
            await waiter
        except BaseException:
            queue.unpark(waiter, spare)
            raise
        woken.append(name)

    older = asyncio.create_task(park("older"))
    await wait_for(lambda: len(queue.spare_takers if spare else queue.takers) == 1)
    newer = asyncio.create_task(park("newer"))
    await wait_for(lambda: len(queue.spare_takers if spare else queue.takers) == 2)
    queue.put_nowait("task", False)  # wakes the newest parked worker...
    newer.cancel()  # ...which is cancelled before it could take the task
    with pytest.raises(asyncio.CancelledError):
        await newer
    await wait_for(lambda: woken == ["older"], turns=1_000)
    await older


# -- a queued task -------------------------------------------------------------------------


@pytest.mark.parametrize("priority", [False, True], ids=["main", "priority"])
@pytest.mark.parametrize("how", QUEUED_WAYS)
async def test_a_task_cancelled_while_queued_never_runs(make_manager: Factory, how: str, priority: bool) -> None:
    gate = Gate()
    never = Recorder()
    async with make_manager(worker_count=1) as manager:
        held = await manager.submit(gate)
        await gate.entered.wait()
        before = await manager.submit(echo, "before", priority=priority)

        def both_queued() -> None:
            assert lane_length(manager, priority) == 2

        await cancel_task(manager, never, how, check=both_queued, priority=priority)
        assert lane_length(manager, priority) == 1
        after = await manager.submit(echo, "after", priority=priority)
        gate.release.set()
        assert [await held, (await before)[1], (await after)[1]] == ["gate", "before", "after"]
    # stop() drained both queues: the cancelled task would have run before `after`.
    assert never.runs == []
    metrics = manager.metrics()
    assert (metrics.total_tasks_completed, metrics.total_tasks_failed) == (3, 0)


async def test_handle_cancel_on_a_finished_task_returns_false_and_changes_nothing(make_manager: Factory) -> None:
    error = KeyError("its own")

    async def fail(resource: Resource) -> None:
        raise error

    async with make_manager() as manager:
        ok = await manager.submit(echo, "ok")
        failed = await manager.submit(fail)
        assert (await ok)[1] == "ok"
        with pytest.raises(KeyError):
            await failed
        assert not ok.cancel()
        assert not failed.cancel()
        assert not ok.cancelled()
        assert not failed.cancelled()
        assert ok.result()[1] == "ok"
        assert failed.exception() is error
        metrics = manager.metrics()
        assert (metrics.total_tasks_completed, metrics.total_tasks_failed) == (1, 1)


# -- a running task ------------------------------------------------------------------------


@pytest.mark.parametrize("timeout", [None, 60.0], ids=["no-timeout", "timeout"])
@pytest.mark.parametrize("how", RUNNING_WAYS)
async def test_a_task_cancelled_while_running_is_cancelled_and_its_worker_keeps_the_resource(
    make_manager: Factory, tracker: Tracker, how: str, timeout: float | None
) -> None:
    blocker = Blocker()
    async with make_manager(worker_count=1) as manager:

        def running() -> None:
            assert manager.stats().running_tasks == 1

        await cancel_task(manager, blocker, how, ready=blocker.started.wait, check=running, timeout=timeout)
        # The next task runs on the same worker, with the same resource.
        assert await manager.queue_task(echo, "next") == (blocker.resources[0].id, "next")
        assert blocker.cancelled.is_set()
        assert len(tracker.created) == 1
        assert tracker.destroyed == []
        stats = manager.stats()
        assert (stats.active_workers, stats.running_tasks) == (1, 0)
        metrics = manager.metrics()
        assert (metrics.total_tasks_completed, metrics.total_tasks_failed) == (1, 0)


async def test_cancelling_one_run_leaves_the_other_workers_run_alone(make_manager: Factory, tracker: Tracker) -> None:
    blocker, gate = Blocker(), Gate()
    async with make_manager(worker_count=2) as manager:
        cancelled = await manager.submit(blocker)
        kept = await manager.submit(gate)
        await blocker.started.wait()
        await gate.entered.wait()
        assert cancelled.cancel()
        await blocker.cancelled.wait()
        assert not kept.done()
        gate.release.set()
        assert await kept == "gate"
        assert tracker.destroyed == []


@pytest.mark.parametrize("moment", ["as its run returns", "after its result was set"])
async def test_a_queue_task_caller_cancelled_at_the_end_of_its_run_leaves_the_workers_next_run_alone(
    make_manager: Factory, moment: str
) -> None:
    # "as its run returns": the run returns, and its caller is cancelled, in one loop
    # iteration with the worker first in line, so the worker finds the result unwanted
    # and goes on to the next task before the caller wakes up to its cancellation.
    # "after its result was set": the next run cancels the caller, whose result is in
    # but who has not woken yet; the cancellation wins, as with any awaited future.
    release, second_started, second_release = asyncio.Event(), asyncio.Event(), asyncio.Event()
    caller: asyncio.Task[str] | None = None

    async def first(resource: Resource) -> str:
        await release.wait()
        return "first"

    async def second(resource: Resource) -> str:
        if moment == "after its result was set":
            assert caller is not None
            caller.cancel()
        second_started.set()
        await second_release.wait()
        return "second"

    async with make_manager(worker_count=1) as manager:
        caller = asyncio.create_task(manager.queue_task(first))
        await wait_for(lambda: manager.stats().running_tasks == 1)
        later = manager.submit_nowait(second)
        release.set()  # the worker's wake-up is scheduled first,
        if moment == "as its run returns":
            caller.cancel()  # the caller's after it
        await second_started.wait()
        with pytest.raises(asyncio.CancelledError):
            await caller
        second_release.set()
        assert await later == "second"
        stats = manager.stats()
        assert (stats.running_tasks, stats.queued_tasks) == (0, 0)
        # A result nobody could take any more counts as neither success nor failure.
        assert manager.metrics().total_tasks_completed == (1 if moment == "as its run returns" else 2)


@pytest.mark.parametrize("how", ["handle.cancel", "task.cancel"])
async def test_cancelling_a_retry_cancels_its_run_while_the_first_worker_still_destroys_its_resource(
    make_manager: Factory, tracker: Tracker, holds: Callable[[], asyncio.Event], how: str
) -> None:
    # The first run breaks its resource; the retry runs on the other worker while the
    # first one is still destroying the broken resource. Cancelling must reach the retry.
    destroying, finish_destroying = asyncio.Event(), holds()
    runs: list[int] = []
    blocker = Blocker()

    async def destroy(resource: Resource) -> None:
        destroying.set()
        await finish_destroying.wait()
        await tracker.destroy(resource)

    async def breaks_then_blocks(resource: Resource) -> None:
        runs.append(resource.id)
        if len(runs) == 1:
            raise Broken
        await blocker(resource)

    async with make_manager(worker_count=2, on_destroy=destroy, check_health=healthy_unless_broken) as manager:
        try:
            if how == "handle.cancel":
                handle = manager.submit_nowait(breaks_then_blocks)
                await blocker.started.wait()
                await destroying.wait()
                assert handle.cancel()
            else:
                caller = asyncio.create_task(manager.queue_task(breaks_then_blocks))
                await blocker.started.wait()
                await destroying.wait()
                caller.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await caller
            # The cancellation reaches the run within a few loop turns, or never.
            await wait_for(blocker.cancelled.is_set, turns=1_000)
            assert runs[0] != runs[1]
        finally:
            finish_destroying.set()  # also when an assertion fails: the shutdown waits for it
        assert await manager.queue_task(echo, "next") is not None


async def test_a_run_that_swallows_its_cancellation_does_not_poison_the_next_task(
    make_manager: Factory, tracker: Tracker
) -> None:
    started, swallowed = asyncio.Event(), asyncio.Event()
    next_started, proceed = asyncio.Event(), asyncio.Event()

    async def returns_anyway(resource: Resource) -> str:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            swallowed.set()
        return "kept"

    async def waits(resource: Resource) -> int:
        next_started.set()
        await proceed.wait()
        await asyncio.sleep(0)
        return resource.id

    async with make_manager(worker_count=1) as manager:
        caller = await start_suspended(lambda: manager.queue_task(returns_anyway))
        await started.wait()
        # Queued already, so the worker takes it straight after the swallowing run.
        after = await manager.submit(waits)
        caller.cancel()
        with pytest.raises(asyncio.CancelledError):
            await caller
        await swallowed.wait()
        await next_started.wait()
        proceed.set()
        assert await after == tracker.created[0].id
        assert len(tracker.created) == 1
        assert manager.metrics().total_tasks_completed == 1


async def test_a_cancelled_run_that_then_breaks_its_resource_replaces_the_worker_but_never_retries(
    make_manager: Factory, tracker: Tracker
) -> None:
    started = asyncio.Event()
    runs: list[int] = []

    async def breaks_when_cancelled(resource: Resource) -> None:
        runs.append(resource.id)
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            raise Broken("connection closed mid-query") from None

    async with make_manager(worker_count=1, check_health=healthy_unless_broken) as manager:
        handle = await manager.submit(breaks_when_cancelled)
        await started.wait()
        assert handle.cancel()
        await tracker.wait_until(lambda: len(tracker.created) == 2)
        assert await manager.queue_task(echo, "next") == (1, "next")
    assert runs == [0]
    assert [r.id for r in tracker.destroyed] == [0, 1]
    assert manager.metrics().total_tasks_retried == 0


# -- a retry waiting out retry_delay -------------------------------------------------------


@pytest.mark.parametrize("how", RUNNING_WAYS)
async def test_a_task_cancelled_while_waiting_out_retry_delay_never_runs_again(
    make_manager: Factory, tracker: Tracker, how: str
) -> None:
    retry_delay = 5.0
    runs: list[int] = []

    async def broken(resource: Resource) -> None:
        runs.append(resource.id)
        raise Broken

    async with make_manager(worker_count=1, check_health=healthy_unless_broken, retry_delay=retry_delay) as manager:

        async def delayed() -> None:
            await wait_for(lambda: manager.metrics().total_tasks_retried == 1)

        def in_no_queue() -> None:
            stats = manager.stats()
            assert (stats.queued_tasks, stats.priority_tasks, stats.running_tasks) == (0, 0, 0)

        await cancel_task(manager, broken, how, ready=delayed, check=in_no_queue)
        await tracker.wait_until(lambda: len(tracker.created) == 2)
        loop = asyncio.get_running_loop()
        stopping_at = loop.time()
    # stop() had nothing left to wait for: the delayed retry was dropped, not run.
    assert loop.time() - stopping_at < retry_delay
    assert runs == [0]
    metrics = manager.metrics()
    assert (metrics.total_tasks_completed, metrics.total_tasks_failed) == (0, 0)


# -- run_task ---------------------------------------------------------------------------------


@pytest.mark.parametrize("how", CALLER_WAYS)
async def test_run_task_cancelled_while_creating_a_temporary_resource_leaks_nothing(
    make_manager: Factory, tracker: Tracker, holds: Callable[[], asyncio.Event], how: str
) -> None:
    creating, proceed, creation_cancelled = asyncio.Event(), holds(), asyncio.Event()
    never = Recorder()

    async def create() -> Resource:
        if tracker.created:  # the worker's resource comes at once; run_task's blocks
            creating.set()
            try:
                await proceed.wait()
            except asyncio.CancelledError:
                creation_cancelled.set()
                raise
        return tracker.create()

    async with make_manager(worker_count=1, on_create=create) as manager:
        await cancel_call(how, lambda: manager.run_task(never), creating)
        assert creation_cancelled.is_set()
        assert len(tracker.created) == 1
        assert manager.stats().available_resources == 0
        # run_task still works, and stop() does not wait for the cancelled call.
        proceed.set()
        assert await manager.run_task(echo, "again") == (1, "again")
    assert never.runs == []
    metrics = manager.metrics()
    assert (metrics.total_tasks_completed, metrics.total_tasks_failed) == (1, 0)
    assert tracker.balanced()


@pytest.mark.parametrize("how", CALLER_WAYS)
async def test_run_task_cancelled_on_a_pooled_resource_puts_it_back(
    make_manager: Factory, tracker: Tracker, how: str
) -> None:
    blocker = Blocker()
    async with make_manager(worker_count=1, resource_pool_size=1) as manager:
        assert manager.stats().available_resources == 1
        await cancel_call(how, lambda: manager.run_task(blocker), blocker.started)
        assert blocker.cancelled.is_set()
        assert manager.stats().available_resources == 1
        assert tracker.destroyed == []
        # The very same resource serves the next call.
        assert await manager.run_task(echo, "next") == (blocker.resources[0].id, "next")
        assert len(tracker.created) == 2
        metrics = manager.metrics()
        assert (metrics.total_tasks_completed, metrics.total_tasks_failed) == (1, 0)
    assert tracker.balanced()


@pytest.mark.parametrize("how", CALLER_WAYS)
async def test_run_task_cancelled_on_a_temporary_resource_destroys_it(
    make_manager: Factory, tracker: Tracker, how: str
) -> None:
    blocker = Blocker()
    async with make_manager(worker_count=1, resource_pool_size=0) as manager:
        await cancel_call(how, lambda: manager.run_task(blocker), blocker.started)
        assert blocker.cancelled.is_set()
        temporary = blocker.resources[0]
        assert temporary is not tracker.created[0]
        assert temporary.closed
        assert tracker.destroyed == [temporary]
        assert manager.stats().available_resources == 0
        metrics = manager.metrics()
        assert (metrics.total_tasks_completed, metrics.total_tasks_failed) == (0, 0)


@pytest.mark.parametrize("how", CALLER_WAYS)
async def test_run_task_cancelled_while_its_temporary_resource_is_destroyed_still_destroys_it(
    make_manager: Factory, tracker: Tracker, holds: Callable[[], asyncio.Event], how: str
) -> None:
    # SPEC §2: on_destroy is "always awaited, shielded from cancellation".
    destroying, finish = asyncio.Event(), holds()
    used: list[Resource] = []

    async def use(resource: Resource) -> int:
        used.append(resource)
        return resource.id

    async def slow_destroy(resource: Resource) -> None:
        if any(resource is mine for mine in used):
            destroying.set()
            await finish.wait()
        await tracker.destroy(resource)

    caller: asyncio.Task[Any]
    async with make_manager(worker_count=1, on_destroy=slow_destroy) as manager:
        if how == "task.cancel":
            caller = asyncio.create_task(manager.run_task(use))
            await destroying.wait()
            caller.cancel()
        else:
            scope = anyio.CancelScope()

            async def in_scope() -> None:
                with scope:
                    await manager.run_task(use)

            caller = asyncio.create_task(in_scope())
            await destroying.wait()
            scope.cancel()
        finish.set()
        # The caller may end with its result or with the cancellation; either way the destroy completes.
        await asyncio.wait({caller})
        assert outcome(caller) in ("cancelled", None, used[0].id)
    assert used[0].closed, "the temporary resource was never destroyed"


# -- stop() -------------------------------------------------------------------------------------


@pytest.mark.parametrize("timeout", [None, 60.0], ids=["no-timeout", "timeout"])
async def test_stop_whose_caller_is_cancelled_still_drains_and_shuts_down(
    make_manager: Factory, tracker: Tracker, timeout: float | None
) -> None:
    gate = Gate()
    manager = make_manager(worker_count=1, resource_pool_size=1)
    await manager.start()
    held = await manager.submit(gate)
    await gate.entered.wait()
    queued = [await manager.submit(echo, i) for i in range(3)]
    stopper = await start_suspended(lambda: manager.stop(timeout=timeout))
    assert manager.stats().state == "stopping"
    stopper.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stopper
    # Cancelling the caller did not turn the stop into a kill...
    assert manager.stats().state == "stopping"
    with pytest.raises(ManagerNotRunningError):
        manager.submit_nowait(echo, "late")
    gate.release.set()
    assert await held == "gate"
    assert [(await handle)[1] for handle in queued] == [0, 1, 2]
    # ...and the shutdown finishes with nobody waiting for it.
    await tracker.wait_until(lambda: tracker.live == 0)
    await manager.stop()
    assert manager.stats().state == "stopped"
    assert len(tracker.created) == 2
    assert tracker.balanced()
    assert not manager_tasks()
    assert manager.metrics().total_tasks_completed == 4


async def test_stop_with_a_timeout_escalates_to_kill_when_a_run_never_ends(
    make_manager: Factory, tracker: Tracker
) -> None:
    blocker = Blocker()
    never = Recorder()
    manager = make_manager(worker_count=1)
    await manager.start()
    running = await start_suspended(lambda: manager.queue_task(blocker))
    queued = await start_suspended(lambda: manager.queue_task(never))
    await blocker.started.wait()
    await manager.stop(timeout=0.05)
    assert manager.stats().state == "killed"
    with pytest.raises(TaskAbortedError):
        await running
    with pytest.raises(TaskAbortedError):
        await queued
    assert blocker.cancelled.is_set()
    assert never.runs == []
    assert tracker.balanced()
    assert not manager_tasks()


# -- kill() -------------------------------------------------------------------------------------


async def test_kill_whose_caller_is_cancelled_still_ends_every_task_and_resource(
    make_manager: Factory, tracker: Tracker, holds: Callable[[], asyncio.Event]
) -> None:
    destroying, finish_destroy = asyncio.Event(), holds()
    blocker, pooled_blocker = Blocker(), Blocker()
    never = Recorder()
    started = {"returns": asyncio.Event(), "raises": asyncio.Event()}
    own_error = KeyError("its own")

    async def slow_destroy(resource: Resource) -> None:
        destroying.set()
        await finish_destroy.wait()
        await tracker.destroy(resource)

    async def returns_anyway(resource: Resource) -> str:
        started["returns"].set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.Event().wait()
        return "kept"

    async def raises_own(resource: Resource) -> None:
        started["raises"].set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            raise own_error from None

    manager = make_manager(worker_count=3, resource_pool_size=1, on_destroy=slow_destroy)
    await manager.start()
    assert (await manager.queue_task(echo, "early"))[1] == "early"
    callers = {
        "running": asyncio.create_task(manager.queue_task(blocker)),
        "returns": asyncio.create_task(manager.queue_task(returns_anyway)),
        "raises": asyncio.create_task(manager.queue_task(raises_own)),
        "run_task": asyncio.create_task(manager.run_task(pooled_blocker)),
    }
    for event in (blocker.started, pooled_blocker.started, *started.values()):
        await event.wait()
    callers["queued"] = await start_suspended(lambda: manager.queue_task(never))
    callers["cancelled"] = await start_suspended(lambda: manager.queue_task(never))
    assert manager.stats().queued_tasks == 2
    callers["cancelled"].cancel()
    with pytest.raises(asyncio.CancelledError):
        await callers["cancelled"]
    assert manager.stats().queued_tasks == 1

    killer = await start_suspended(manager.kill)
    stopper = await start_suspended(manager.stop)
    await destroying.wait()
    # The caller gives up while the shutdown is destroying resources; the
    # destroys go on, and the shutdown must still run to its end.
    killer.cancel()
    finish_destroy.set()
    with pytest.raises(asyncio.CancelledError):
        await killer
    assert manager.stats().state == "killed"
    await stopper
    await manager.kill()

    await asyncio.wait(callers.values())
    outcomes = {name: outcome(caller) for name, caller in callers.items()}
    assert outcomes.pop("returns") == "kept"
    assert outcomes.pop("raises") is own_error
    assert outcomes.pop("cancelled") == "cancelled"
    assert {name: type(result) for name, result in outcomes.items()} == dict.fromkeys(
        ("running", "run_task", "queued"), TaskAbortedError
    )
    assert blocker.cancelled.is_set()
    assert pooled_blocker.cancelled.is_set()
    assert never.runs == []
    assert len(tracker.created) == 4
    assert tracker.balanced()
    assert not manager_tasks()


# -- async with ------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["cancel scope", "deadline", "task.cancel"])
async def test_leaving_async_with_by_cancellation_kills_and_lets_the_cancellation_through(
    make_manager: Factory, tracker: Tracker, how: str
) -> None:
    blocker = Blocker()
    never = Recorder()
    manager = make_manager(worker_count=1)
    handles: list[TaskHandle[Any]] = []

    async def block(on_started: Callable[[], object]) -> None:
        async with manager:
            handles.append(await manager.submit(blocker))
            handles.append(await manager.submit(never))
            await blocker.started.wait()
            on_started()
            await asyncio.Event().wait()

    if how == "cancel scope":
        with anyio.CancelScope() as scope:
            await block(scope.cancel)
        assert scope.cancelled_caught
    elif how == "deadline":
        with anyio.move_on_after(math.inf) as scope:

            def expire() -> None:
                scope.deadline = anyio.current_time()

            await block(expire)
        assert scope.cancelled_caught
    else:
        task = asyncio.create_task(block(lambda: None))
        await blocker.started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    assert manager.stats().state == "killed"
    for handle in handles:
        with pytest.raises(TaskAbortedError):
            await handle
    assert blocker.cancelled.is_set()
    assert never.runs == []
    assert tracker.balanced()
    assert not manager_tasks()


async def test_async_with_cancelled_while_draining_on_exit_kills(make_manager: Factory, tracker: Tracker) -> None:
    gate = Gate()
    never = Recorder()
    manager = make_manager(worker_count=1)
    handles: list[TaskHandle[Any]] = []

    async def block() -> None:
        async with manager:
            handles.append(await manager.submit(gate))
            handles.append(await manager.submit(never))
            await gate.entered.wait()

    task = asyncio.create_task(block())
    await wait_for(lambda: manager.stats().state == "stopping")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert manager.stats().state == "killed"
    for handle in handles:
        with pytest.raises(TaskAbortedError):
            await handle
    assert never.runs == []
    assert tracker.balanced()
    assert not manager_tasks()


async def test_async_with_cancelled_while_creating_resources_leaves_nothing(
    make_manager: Factory, tracker: Tracker, holds: Callable[[], asyncio.Event]
) -> None:
    creating, proceed = asyncio.Event(), holds()

    async def create() -> Resource:
        if tracker.created:  # the first resource comes at once, the second blocks
            creating.set()
            await proceed.wait()
        return tracker.create()

    manager = make_manager(worker_count=2, on_create=create)
    entered: list[bool] = []

    async def block() -> None:
        async with manager:
            entered.append(True)

    task = asyncio.create_task(block())
    await creating.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert entered == []
    assert manager.stats().state != "running"
    assert len(tracker.created) == 1
    assert tracker.balanced()
    assert not manager_tasks()


async def test_async_with_cancelled_after_the_workers_started_leaves_nothing_running(
    make_manager: Factory, tracker: Tracker
) -> None:
    manager = make_manager(worker_count=2)
    entered: list[bool] = []

    async def block() -> None:
        async with manager:
            entered.append(True)

    task = asyncio.create_task(block())
    # start() turns the manager "running", starts the workers' host task and
    # waits for it in the same step: the cancellation lands in that wait.
    await wait_for(lambda: manager.stats().state == "running")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert entered == []
    # __aenter__ raised, so __aexit__ will never run: start() must not leave a running manager behind.
    assert manager.stats().state in ("stopped", "killed")
    assert tracker.live == 0
    assert not manager_tasks()
