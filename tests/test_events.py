"""Lifecycle events: what hooks are told, in what order, and that a raising hook harms nothing."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import pytest

from tasker_async import (
    AsyncManager,
    Config,
    ConfigError,
    LifecycleEvent,
    MaxRetriesExceededError,
    ResourceCreationFailed,
    TaskAbortedError,
    TaskEvent,
    TaskHandle,
    TaskTimeoutError,
    WorkerEvent,
)

from .conftest import EventLog, Resource, Tracker, wait_for

Factory = Callable[..., AsyncManager[Resource]]


class Recorder(EventLog):
    def task_kinds(self, name: str | None = None) -> list[str]:
        return [e.kind for e in self.events if isinstance(e, TaskEvent) and (name is None or e.name.endswith(name))]

    def workers(self) -> list[tuple[str, int, str]]:
        return [(e.kind, e.worker_id, e.reason) for e in self.events if isinstance(e, WorkerEvent)]


class Broken(Exception):
    pass


async def ok(resource: Resource) -> int:
    return resource.id


async def test_a_successful_task_is_queued_started_and_succeeds(make_manager: Factory) -> None:
    recorder = Recorder()
    async with make_manager(worker_count=1, hooks=[recorder]) as manager:
        assert await manager.queue_task(ok, priority=True) == 0
    assert recorder.task_kinds() == ["queued", "started", "succeeded"]
    done = recorder.events[[type(e) for e in recorder.events].index(TaskEvent) + 2]
    assert isinstance(done, TaskEvent)
    assert done.name.endswith("ok")
    assert done.priority is True
    assert done.attempt == 1
    assert (done.wait_time or 0.0) >= 0
    assert (done.run_time or -1.0) >= 0
    assert recorder.workers() == [("created", 1, "start"), ("destroyed", 1, "shutdown")]


async def test_a_task_queued_after_its_worker_was_free_never_starts_before_it_was_queued(
    make_manager: Factory,
) -> None:
    # A hook that submits on "succeeded" queues the next task after the worker's previous
    # run ended and before it takes that task: its run starts when it was queued.
    recorder = Recorder()
    handles: list[TaskHandle[int]] = []

    def submit_next(event: LifecycleEvent) -> None:
        if isinstance(event, TaskEvent) and event.kind == "succeeded" and event.name.endswith("ok") and not handles:
            handles.append(manager.submit_nowait(ok))

    async with make_manager(worker_count=1, hooks=[recorder, submit_next]) as manager:
        assert await manager.queue_task(ok) == 0
        await wait_for(lambda: bool(handles))
        assert await handles[0] == 0
        metrics = manager.metrics()
    started = recorder.of(TaskEvent, kind="started")
    assert len(started) == 2
    for event in started:
        assert event.started_at is not None
        assert event.started_at >= event.queued_at
    assert metrics.average_wait_time >= 0


async def test_failures_timeouts_and_retries_are_reported(make_manager: Factory) -> None:
    recorder = Recorder()

    async def broken(resource: Resource) -> None:
        raise Broken

    async def fail(resource: Resource) -> None:
        raise ValueError

    async def slow(resource: Resource) -> None:
        await asyncio.Event().wait()

    async with make_manager(
        worker_count=1, max_retries=1, check_health=lambda e: not isinstance(e, Broken), hooks=[recorder]
    ) as manager:
        with pytest.raises(ValueError):  # noqa: PT011
            await manager.queue_task(fail)
        with pytest.raises(TaskTimeoutError):
            await manager.queue_task(slow, timeout=0.01)
        with pytest.raises(MaxRetriesExceededError):
            await manager.queue_task(broken)
    assert recorder.task_kinds("fail") == ["queued", "started", "failed"]
    assert recorder.task_kinds("slow") == ["queued", "started", "timed_out"]
    assert recorder.task_kinds("broken") == ["queued", "started", "retried", "started", "failed"]
    final = [e for e in recorder.events if isinstance(e, TaskEvent) and e.name.endswith("broken")][-1]
    assert isinstance(final.error, MaxRetriesExceededError)
    assert final.attempt == 2
    kinds = recorder.workers()
    assert ("replaced", 1, "unhealthy") in kinds
    assert ("created", 2, "replacement") in kinds
    assert ("destroyed", 1, "unhealthy") in kinds


async def test_cancellations_and_aborts_are_reported(make_manager: Factory) -> None:
    recorder = Recorder()
    release = asyncio.Event()

    async def hold(resource: Resource) -> None:
        await release.wait()

    manager = make_manager(worker_count=1, hooks=[recorder])
    await manager.start()
    running = await manager.submit(hold)
    await wait_for(lambda: manager.stats().running_tasks == 1)
    queued = await manager.submit(ok)
    doomed = await manager.submit(ok)
    queued.cancel()
    await manager.kill()
    with pytest.raises(TaskAbortedError):
        await doomed
    with pytest.raises(TaskAbortedError):
        await running
    assert recorder.task_kinds("hold") == ["queued", "started", "aborted"]
    assert sorted(recorder.task_kinds("ok")) == sorted(["queued", "queued", "cancelled", "aborted"])


async def test_creation_failures_are_reported_with_their_backoff(make_manager: Factory, tracker: Tracker) -> None:
    recorder = Recorder()

    async def broken_first(resource: Resource) -> int:
        if resource.id == 0:
            raise Broken
        return resource.id

    async with make_manager(
        worker_count=1, check_health=lambda e: not isinstance(e, Broken), hooks=[recorder]
    ) as manager:
        tracker.fail_next = 2
        assert await manager.queue_task(broken_first) == 1
    failures = [e for e in recorder.events if isinstance(e, ResourceCreationFailed)]
    assert [f.consecutive_failures for f in failures] == [1, 2]
    # The default backoff, 0.05 s then 0.1 s, each jittered between half and all of it.
    first, second = failures[0].retry_in, failures[1].retry_in
    assert first is not None
    assert second is not None
    assert 0.025 <= first < 0.05 <= second < 0.1
    assert all(isinstance(f.error, ConnectionError) for f in failures)


async def test_a_raising_hook_is_logged_and_changes_nothing(
    make_manager: Factory, caplog: pytest.LogCaptureFixture
) -> None:
    def bad_hook(event: LifecycleEvent) -> None:
        raise RuntimeError("hook bug")

    recorder = Recorder()
    caplog.set_level(logging.ERROR, logger="tasker_async")
    async with make_manager(worker_count=1, hooks=[bad_hook, recorder]) as manager:
        assert await manager.queue_task(ok) == 0
    assert recorder.task_kinds() == ["queued", "started", "succeeded"]
    assert "lifecycle hook" in caplog.text


async def test_hooks_can_be_added_and_removed(make_manager: Factory) -> None:
    recorder = Recorder()
    async with make_manager(worker_count=1) as manager:
        manager.add_hook(recorder)
        await manager.queue_task(ok)
        manager.remove_hook(recorder)
        await manager.queue_task(ok)
        with pytest.raises(ValueError):  # noqa: PT011
            manager.remove_hook(recorder)
        with pytest.raises(TypeError):
            manager.add_hook(42)  # type: ignore[arg-type]
    assert recorder.task_kinds() == ["queued", "started", "succeeded"]


def test_hooks_must_be_callables() -> None:
    with pytest.raises(ConfigError, match="hooks"):
        Config(on_create=object, hooks=[42])  # type: ignore[list-item, arg-type]
    with pytest.raises(ConfigError, match="hooks"):
        Config(on_create=object, hooks="not a sequence")  # type: ignore[arg-type]


async def plain_success(resource: Resource) -> int:
    return resource.id


async def test_logging_levels(make_manager: Factory, tracker: Tracker, caplog: pytest.LogCaptureFixture) -> None:
    async def broken_first(resource: Resource) -> int:
        if resource.id == 0:
            raise Broken
        return resource.id

    caplog.set_level(logging.DEBUG, logger="tasker_async")
    async with make_manager(worker_count=1, check_health=lambda e: not isinstance(e, Broken)) as manager:
        tracker.fail_next = 1
        assert await manager.queue_task(broken_first) == 1
        assert await manager.queue_task(plain_success) == 1
    levels = {(r.levelname, r.getMessage().split(" ")[0]) for r in caplog.records}
    assert ("WARNING", "task") in levels  # the unhealthy error and the retry
    assert ("ERROR", "on_create") in levels
    assert ("INFO", "worker") in levels
    # Nothing above debug is logged for a task that simply succeeds.
    assert not [r for r in caplog.records if "plain_success" in r.getMessage() and r.levelno > logging.DEBUG]


async def test_a_retried_event_carries_the_failed_run(make_manager: Factory) -> None:
    recorder = Recorder()

    async def broken_first(resource: Resource) -> int:
        if resource.id == 0:
            raise Broken
        return resource.id

    async with make_manager(
        worker_count=1, check_health=lambda e: not isinstance(e, Broken), hooks=[recorder]
    ) as manager:
        assert await manager.queue_task(broken_first) == 1
    (retried,) = [e for e in recorder.events if isinstance(e, TaskEvent) and e.kind == "retried"]
    assert retried.priority is True  # it is re-queued on the priority queue
    assert isinstance(retried.error, Broken)
    assert retried.run_time is not None
    assert retried.attempt == 1


async def test_run_task_reports_queued_and_its_end_even_when_cancelled_or_killed(
    make_manager: Factory,
) -> None:
    recorder = Recorder()
    inside = asyncio.Event()

    async def hold(resource: Resource) -> None:
        inside.set()
        await asyncio.Event().wait()

    manager = make_manager(worker_count=1, resource_pool_size=1, hooks=[recorder])
    await manager.start()
    assert await manager.run_task(ok) == 1
    caller = asyncio.ensure_future(manager.run_task(hold))
    await inside.wait()
    caller.cancel()
    await asyncio.wait({caller})
    inside.clear()
    doomed = asyncio.ensure_future(manager.run_task(hold))
    await inside.wait()
    await manager.kill()
    with pytest.raises(TaskAbortedError):
        await doomed
    assert recorder.task_kinds("ok") == ["queued", "started", "succeeded"]
    assert recorder.task_kinds("hold") == ["queued", "started", "cancelled", "queued", "started", "aborted"]


async def test_run_task_run_time_excludes_destroying_its_temporary_resource(
    make_manager: Factory, tracker: Tracker
) -> None:
    recorder = Recorder()

    async def slow_destroy(resource: Resource) -> None:
        await asyncio.sleep(0.2)  # allow-sleep: a destroy of known length, not a wait for a state
        await tracker.destroy(resource)

    async with make_manager(worker_count=1, resource_pool_size=0, on_destroy=slow_destroy, hooks=[recorder]) as m:
        await m.run_task(ok)
    (done,) = [e for e in recorder.events if isinstance(e, TaskEvent) and e.kind == "succeeded"]
    assert done.run_time is not None
    assert done.run_time < 0.1


async def test_an_aborted_queued_task_reports_its_error(make_manager: Factory) -> None:
    recorder = Recorder()
    release = asyncio.Event()

    async def hold(resource: Resource) -> None:
        await release.wait()

    manager = make_manager(worker_count=1, hooks=[recorder])
    await manager.start()
    running = await manager.submit(hold)
    await wait_for(lambda: manager.stats().running_tasks == 1)
    queued = await manager.submit(ok)
    await manager.kill()
    for handle in (running, queued):
        with pytest.raises(TaskAbortedError):
            await handle
    aborted = [e for e in recorder.events if isinstance(e, TaskEvent) and e.kind == "aborted"]
    assert len(aborted) == 2
    assert all(isinstance(e.error, TaskAbortedError) and e.finished_at is not None for e in aborted)


def test_a_manager_can_be_made_outside_a_running_loop() -> None:
    manager = AsyncManager(Config(on_create=object))
    assert manager.stats().state == "created"
    assert asyncio.run(_start_and_stop(manager)) == "stopped"


async def _start_and_stop(manager: AsyncManager[object]) -> str:
    async with manager:
        pass
    return manager.stats().state


def test_lifecycle_event_resolves_at_runtime() -> None:
    import typing

    def hook(event: LifecycleEvent) -> None: ...

    hints = typing.get_type_hints(hook)
    assert set(typing.get_args(hints["event"])) >= {TaskEvent, WorkerEvent}
