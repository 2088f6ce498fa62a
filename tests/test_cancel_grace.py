"""A cancelled run gets one CancelledError, the asyncio way, so its own cleanup finishes (bounded by cancel_grace).

The model is a task that opens a transaction on its connection and rolls it
back, with an awaited statement, when it is cancelled: the next task must
never receive the connection inside the open transaction.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from tasker_async import AsyncManager, TaskEvent, TaskTimeoutError, WorkerEvent

from .conftest import EventLog, Resource, Tracker, wait_for

Factory = Callable[..., AsyncManager[Resource]]


class Transfer:
    """``BEGIN``, work until cancelled, then an awaited ``ROLLBACK`` that the test may hold."""

    def __init__(self, *, stubborn: bool = False) -> None:
        self.open: dict[int, bool] = {}  # resource id -> a transaction is open on it
        self.started = asyncio.Event()
        self.cleaning = asyncio.Event()
        self.rolled_back = asyncio.Event()
        self.release = asyncio.Event()  # lets the ROLLBACK finish
        self.recancelled = asyncio.Event()  # the ROLLBACK was cancelled too
        self.stubborn = stubborn  # its ROLLBACK shrugs off further cancellations too

    async def __call__(self, resource: Resource) -> str:
        self.open[resource.id] = True  # BEGIN
        self.started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cleaning.set()
            await self._rollback(resource)
            raise
        return "unreachable"

    async def _rollback(self, resource: Resource) -> None:
        while True:
            try:
                await self.release.wait()
                break
            except asyncio.CancelledError:
                self.recancelled.set()
                if not self.stubborn:
                    raise
        await asyncio.sleep(0)  # the statement's round trip
        self.open[resource.id] = False
        self.rolled_back.set()


def sees(transfer: Transfer) -> Callable[[Resource], Awaitable[tuple[int, bool]]]:
    async def check(resource: Resource) -> tuple[int, bool]:
        await asyncio.sleep(0)  # a worker whose cancellation was not taken back would fail here
        return resource.id, transfer.open.get(resource.id, False)

    return check


async def turns(count: int = 20) -> None:
    """Let the loop run ``count`` turns: enough for a worker to move on, if it could."""
    for _ in range(count):
        await asyncio.sleep(0)


@pytest.mark.parametrize("how", ["handle.cancel", "task.cancel"])
async def test_a_caller_cancel_lets_the_cleanup_finish_before_the_resource_serves_the_next_task(
    make_manager: Factory, tracker: Tracker, how: str
) -> None:
    transfer = Transfer()
    async with make_manager(worker_count=1) as manager:
        if how == "handle.cancel":
            handle = await manager.submit(transfer)
            await transfer.started.wait()
            after = await manager.submit(sees(transfer))
            assert handle.cancel()
        else:
            caller = asyncio.create_task(manager.queue_task(transfer))
            await transfer.started.wait()
            after = await manager.submit(sees(transfer))
            caller.cancel()
            with pytest.raises(asyncio.CancelledError):
                await caller
        await transfer.cleaning.wait()
        await turns()
        assert not after.done(), "the next task got the connection inside the open transaction"
        assert manager.stats().running_tasks == 1
        transfer.release.set()
        assert await after == (0, False)
        assert transfer.rolled_back.is_set()
        assert len(tracker.created) == 1
        assert tracker.destroyed == []


async def test_a_timeout_lets_the_cleanup_finish_and_then_reports_the_timeout(
    make_manager: Factory, tracker: Tracker
) -> None:
    transfer = Transfer()
    async with make_manager(worker_count=1) as manager:
        caller = asyncio.create_task(manager.queue_task(transfer, timeout=0.01))
        await transfer.cleaning.wait()
        after = await manager.submit(sees(transfer))
        await turns()
        # The caller hears of the timeout once the cleanup is done, within the grace.
        assert not caller.done()
        assert not after.done()
        transfer.release.set()
        with pytest.raises(TaskTimeoutError):
            await caller
        assert await after == (0, False)
        assert len(tracker.created) == 1
        assert manager.metrics().total_tasks_failed == 1


async def test_a_task_timeout_from_config_cancels_once_too(make_manager: Factory, tracker: Tracker) -> None:
    transfer = Transfer()
    async with make_manager(worker_count=1, task_timeout=0.01) as manager:
        caller = asyncio.create_task(manager.queue_task(transfer))
        await transfer.cleaning.wait()
        transfer.release.set()
        with pytest.raises(TaskTimeoutError):
            await caller
        assert transfer.rolled_back.is_set()
        assert await manager.queue_task(sees(transfer), timeout=60) == (0, False)


@pytest.mark.parametrize("cause", ["caller", "timeout"])
async def test_a_cleanup_that_hangs_past_the_grace_costs_the_resource_not_the_caller(
    make_manager: Factory, tracker: Tracker, cause: str
) -> None:
    transfer = Transfer(stubborn=True)
    events = EventLog()
    async with make_manager(worker_count=1, cancel_grace=0.01, hooks=[events]) as manager:
        if cause == "caller":
            handle = await manager.submit(transfer)
            await transfer.started.wait()
            assert handle.cancel()
        else:
            handle = await manager.submit(transfer, timeout=0.01)
            # Not kept waiting for the cleanup, which still hangs.
            with pytest.raises(TaskTimeoutError):
                await handle
            assert not transfer.rolled_back.is_set()
        await transfer.recancelled.wait()  # the grace is over: the worker itself is being ended
        assert not transfer.rolled_back.is_set()
        assert manager.stats().running_tasks == 1
        transfer.release.set()
        await events.until(lambda: bool(events.of(WorkerEvent, kind="replaced")))
        assert events.of(WorkerEvent, kind="replaced")[0].reason == "unhealthy"
        # The overrun resource is destroyed, never reused: a fresh one serves the next task.
        await tracker.wait_until(lambda: len(tracker.created) == 2 and len(tracker.destroyed) == 1)
        assert tracker.destroyed[0].id == 0
        assert await manager.queue_task(sees(transfer)) == (1, False)
        kinds = [e.kind for e in events.of(TaskEvent, task_id=handle.task_id)]
        assert kinds[-1] == ("cancelled" if cause == "caller" else "timed_out")
        assert kinds.count(kinds[-1]) == 1


@pytest.mark.parametrize("cause", ["caller", "timeout"])
async def test_a_run_that_swallows_its_cancellation_keeps_its_resource_within_the_grace(
    make_manager: Factory, tracker: Tracker, cause: str
) -> None:
    started = asyncio.Event()

    async def swallows(resource: Resource) -> str:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            await asyncio.sleep(0)  # awaits still work after the one cancellation
        return "late"

    async with make_manager(worker_count=1) as manager:
        handle = await manager.submit(swallows, timeout=0.01 if cause == "timeout" else None)
        await started.wait()
        if cause == "caller":
            assert handle.cancel()
            with pytest.raises(asyncio.CancelledError):
                await handle
        else:
            # The deadline is the contract: a result after it is not delivered.
            with pytest.raises(TaskTimeoutError):
                await handle
        assert await manager.queue_task(sees(Transfer())) == (0, False)
        assert len(tracker.created) == 1
        metrics = manager.metrics()
        assert metrics.total_tasks_completed == 1
        assert metrics.total_tasks_failed == (1 if cause == "timeout" else 0)


async def test_a_run_that_swallows_its_cancellation_and_runs_on_is_ended_after_the_grace(
    make_manager: Factory, tracker: Tracker
) -> None:
    started, went_on = asyncio.Event(), asyncio.Event()

    async def runs_on(resource: Resource) -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            went_on.set()
        await asyncio.Event().wait()  # only the worker's own (level) cancellation ends this

    async with make_manager(worker_count=1, cancel_grace=0.01) as manager:
        handle = await manager.submit(runs_on)
        await started.wait()
        handle.cancel()
        await went_on.wait()
        await tracker.wait_until(lambda: len(tracker.created) == 2 and len(tracker.destroyed) == 1)
        assert await manager.queue_task(sees(Transfer())) == (1, False)


async def test_kill_during_a_cleanup_still_cuts_it_short(make_manager: Factory, tracker: Tracker) -> None:
    transfer = Transfer()
    manager = make_manager(worker_count=1)
    await manager.start()
    handle = await manager.submit(transfer)
    await transfer.started.wait()
    handle.cancel()
    await transfer.cleaning.wait()
    await manager.kill()
    assert not transfer.rolled_back.is_set()
    assert tracker.balanced()
    assert manager.stats().running_tasks == 0


# -- run_task -----------------------------------------------------------------------------


async def test_run_task_timeout_lets_the_cleanup_finish_and_keeps_the_pooled_resource(
    make_manager: Factory, tracker: Tracker
) -> None:
    transfer = Transfer()
    async with make_manager(worker_count=1, resource_pool_size=1) as manager:
        caller = asyncio.create_task(manager.run_task(transfer, timeout=0.01))
        await transfer.cleaning.wait()
        await turns()
        assert not caller.done()
        transfer.release.set()
        with pytest.raises(TaskTimeoutError):
            await caller
        assert transfer.rolled_back.is_set()
        assert manager.stats().available_resources == 1
        assert tracker.destroyed == []
        pooled = next(r for r in tracker.created if r.id in transfer.open)
        assert await manager.run_task(sees(transfer)) == (pooled.id, False)


async def test_run_task_cleanup_past_the_grace_destroys_the_pooled_resource(
    make_manager: Factory, tracker: Tracker
) -> None:
    transfer = Transfer(stubborn=True)
    async with make_manager(worker_count=1, resource_pool_size=1, cancel_grace=0.01) as manager:
        caller = asyncio.create_task(manager.run_task(transfer, timeout=0.01))
        await transfer.recancelled.wait()  # the grace is over
        transfer.release.set()  # it finishes, but too late to be trusted
        with pytest.raises(TaskTimeoutError):
            await caller
        await tracker.wait_until(lambda: len(tracker.destroyed) == 1)
        assert tracker.destroyed[0].id in transfer.open
        await wait_for(lambda: manager.stats().available_resources == 1)
