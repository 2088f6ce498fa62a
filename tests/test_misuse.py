"""Misuse caught early, with a message that says what to do.

A task function that cannot work is refused at submission, before it runs;
a submission from another loop or thread, a blocking wait on the loop's own
thread and a ``stop()`` awaited from inside a task each raise at once; bad
timeouts are refused by name; a callback is always called.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import functools
import math
import threading
import types
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Generator, Iterator
from typing import Any

import pytest

from tasker_async import AsyncManager, ManagerNotRunningError, TaskAbortedError
from tasker_async._api.checks import ACCEPTED, check_task

from .conftest import Resource, Tracker, make_config, wait_for

Factory = Callable[..., AsyncManager[Resource]]
SHAPE = r"async def fn\(resource, \.\.\.\)"
THREADSAFE = r"different event loop/thread than the manager's; use manager\.submit_threadsafe"

ran: list[str] = []  # what the refused functions below did: nothing, if refused in time


@pytest.fixture(autouse=True)
def _nothing_ran() -> Iterator[None]:
    ran.clear()
    yield
    assert ran == []


async def echo(resource: Resource, value: Any) -> Any:
    return value


def sync_task(resource: Resource, value: Any = None) -> int:
    ran.append("sync_task")
    return 1


async def agen_task(resource: Resource, value: Any = None) -> AsyncIterator[int]:
    ran.append("agen_task")
    yield 1


def gen_task(resource: Resource, value: Any = None) -> Iterator[int]:
    ran.append("gen_task")
    yield 1


class Methods:
    def sync(self, resource: Resource, value: Any = None) -> int:
        ran.append("Methods.sync")
        return 1

    async def run(self, resource: Resource, value: Any = None) -> Any:
        return ("method", value)


@dataclasses.dataclass  # eq=True: unhashable, so never cached, and still fine
class CallableJob:
    tag: str

    async def __call__(self, resource: Resource, value: Any = None) -> Any:
        return (self.tag, value)


def wrapping(fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    @functools.wraps(fn)
    def wrapper(*args: Any) -> Awaitable[Any]:  # a sync wrapper that returns the coroutine
        return fn(*args)

    return wrapper


@types.coroutine  # a generator-based coroutine
def legacy_task(resource: Resource, value: Any = None) -> Generator[None, None, tuple[str, Any]]:
    yield  # what asyncio.sleep(0) does
    return ("legacy", value)


# -- task functions refused at submission ----------------------------------------------

REFUSED: list[tuple[str, Any, str]] = [
    ("plain def", sync_task, rf"test_misuse\.sync_task is a plain function.*{SHAPE}"),
    ("an int", 42, rf"fn must be an async function: tasks must be '{SHAPE}'; got 42"),
    ("None", None, rf"fn must be an async function: tasks must be '{SHAPE}'; got None"),
    ("async generator", agen_task, rf"agen_task is an async generator function.*{SHAPE}"),
    ("generator", gen_task, rf"gen_task is a generator function.*{SHAPE}"),
    ("partial of a plain def", functools.partial(sync_task), rf"sync_task is a plain function.*{SHAPE}"),
    ("bound plain method", Methods().sync, rf"Methods\.sync is a plain function.*{SHAPE}"),
]

# Every way in: (name, a call that submits ``fn`` on a running manager).
Submit = Callable[[AsyncManager[Resource], Any], Coroutine[Any, Any, object]]


async def _drain(results: AsyncIterator[Any]) -> None:
    async for _ in results:
        pass


ENTRY_POINTS: list[tuple[str, Submit]] = [
    ("submit", lambda m, fn: m.submit(fn, 1)),
    ("submit_nowait", lambda m, fn: _now(m.submit_nowait, fn, 1)),
    ("queue_task", lambda m, fn: m.queue_task(fn, 1)),
    ("run_task", lambda m, fn: m.run_task(fn, 1)),
    ("queue_task_with_callback", lambda m, fn: _now(m.queue_task_with_callback, fn, lambda r, e: None, 1)),
    ("submit_threadsafe", lambda m, fn: _now(m.submit_threadsafe, fn, 1)),
    ("queue_task_with_priority (alias)", lambda m, fn: m.queue_task_with_priority(fn, 1)),
    ("queue_task_once_async (alias)", lambda m, fn: _now(m.queue_task_once_async, fn, 1)),
    ("queue_task_once_with_callback (alias)", lambda m, fn: _now(m.queue_task_once_with_callback, fn, print, 1)),
    ("map", lambda m, fn: _drain(m.map(fn, [1]))),
    ("as_completed", lambda m, fn: _drain(m.as_completed(fn, [1]))),
]


async def _now(call: Callable[..., object], *args: Any) -> object:
    return call(*args)


@pytest.mark.parametrize(("kind", "fn", "message"), REFUSED, ids=[r[0] for r in REFUSED])
@pytest.mark.parametrize(("entry", "submit"), ENTRY_POINTS, ids=[e[0] for e in ENTRY_POINTS])
async def test_a_function_that_cannot_be_a_task_is_refused_before_it_runs(
    make_manager: Factory, kind: str, fn: Any, message: str, entry: str, submit: Submit
) -> None:
    async with make_manager(resource_pool_size=1) as manager:
        for _ in range(2):  # a refusal is not remembered as anything else, before or after a good task
            with pytest.raises(TypeError, match=message):
                await submit(manager, fn)
            assert await manager.queue_task(echo, "fine") == "fine"
        assert manager.metrics().total_tasks_arrived == 2


@pytest.mark.parametrize(
    "fn",
    [
        pytest.param(lambda r, v: echo(r, ("lambda", v)), id="lambda returning a coroutine"),
        pytest.param(functools.partial(echo), id="partial of an async def"),
        pytest.param(Methods().run, id="bound async method"),
        pytest.param(CallableJob("job"), id="unhashable callable object"),
        pytest.param(wrapping(echo), id="sync wrapper with __wrapped__"),
        pytest.param(legacy_task, id="types.coroutine"),
    ],
)
async def test_callables_that_may_return_an_awaitable_are_accepted_and_run(make_manager: Factory, fn: Any) -> None:
    async with make_manager() as manager:
        for _ in range(2):  # again, from the cache where it applies
            assert await manager.queue_task(fn, 7) is not None
            assert await manager.submit_nowait(fn, 7) is not None


def test_the_cache_of_accepted_functions_stays_bounded() -> None:
    code = echo.__code__
    for index in range(3000):
        check_task(types.FunctionType(code, globals(), f"made_{index}"))
        assert len(ACCEPTED) <= 1024
    check_task(echo)
    assert echo in ACCEPTED


# -- submissions from another loop or thread -------------------------------------------

FOREIGN: list[tuple[str, Submit]] = [
    ("submit", lambda m, fn: m.submit(fn, 1)),
    ("submit_nowait", lambda m, fn: _now(m.submit_nowait, fn, 1)),
    ("queue_task", lambda m, fn: m.queue_task(fn, 1)),
    ("run_task", lambda m, fn: m.run_task(fn, 1)),
]


@pytest.mark.parametrize(("entry", "submit"), FOREIGN, ids=[e[0] for e in FOREIGN])
async def test_a_submission_from_another_event_loop_is_refused(
    make_manager: Factory, entry: str, submit: Submit
) -> None:
    async def from_other_loop() -> BaseException | None:
        try:
            await submit(manager, echo)
        except BaseException as exc:
            return exc
        return None

    async with make_manager(resource_pool_size=1) as manager:
        for _ in range(2):  # before and after a submission from the manager's own loop
            error = await asyncio.to_thread(asyncio.run, from_other_loop())
            assert isinstance(error, RuntimeError)
            assert error.args[0].startswith(f"{entry}() called from a different event loop/thread")
            assert "submit_threadsafe" in error.args[0]
            assert await manager.queue_task(echo, "local") == "local"
        assert manager.metrics().total_tasks_arrived == 2


async def test_submit_nowait_from_a_plain_thread_is_refused(make_manager: Factory) -> None:
    async with make_manager() as manager:
        for _ in range(2):  # before and after a submission from the manager's own loop
            with pytest.raises(RuntimeError, match=THREADSAFE):
                await asyncio.to_thread(manager.submit_nowait, echo, 1)
            assert await manager.queue_task(echo, "local") == "local"
        assert manager.metrics().total_tasks_arrived == 2


# -- submit_threadsafe's future on the loop's own thread --------------------------------


async def test_blocking_on_a_threadsafe_future_on_the_loops_own_thread_raises_at_once(make_manager: Factory) -> None:
    gate = asyncio.Event()

    async def held(resource: Resource) -> str:
        await gate.wait()
        return "done"

    async with make_manager(worker_count=1) as manager:
        future = manager.submit_threadsafe(held)
        assert isinstance(future, concurrent.futures.Future)
        with pytest.raises(RuntimeError, match=r"wrap_future"):
            future.result(timeout=0.05)  # would wait the whole timeout, then raise TimeoutError
        with pytest.raises(RuntimeError, match=r"wrap_future"):
            future.exception(timeout=0.05)
        with pytest.raises(RuntimeError, match=r"future\.result\(\) called on the thread of the event loop"):
            future.result()
        with pytest.raises(concurrent.futures.TimeoutError):
            future.result(timeout=0)  # a poll never blocks: allowed
        assert not future.done()
        gate.set()
        assert await asyncio.wrap_future(future) == "done"
        assert future.result() == "done"  # done: nothing to wait for, fine on any thread
        # From another thread, blocking is what the future is for.
        assert await asyncio.to_thread(manager.submit_threadsafe(echo, "x").result, 5) == "x"


# -- stop() and kill() from inside a task ----------------------------------------------


async def test_stop_from_inside_a_task_raises_at_once_and_changes_nothing(make_manager: Factory) -> None:
    async def stops_its_manager(resource: Resource) -> BaseException | None:
        try:
            await manager.stop()
        except RuntimeError as exc:
            return exc
        return None

    async with make_manager() as manager:
        async with asyncio.timeout(5):  # the bug this guards against is a deadlock
            error = await manager.queue_task(stops_its_manager)
        assert isinstance(error, RuntimeError)
        assert "inside one of this manager's own tasks" in str(error)
        assert manager.stats().state == "running"
        assert await manager.queue_task(echo, 1) == 1
    assert manager.stats().state == "stopped"


async def test_stop_from_inside_a_run_task_body_raises_at_once(make_manager: Factory) -> None:
    async def stops_its_manager(resource: Resource) -> BaseException | None:
        try:
            await manager.stop(timeout=1)
        except RuntimeError as exc:
            return exc
        return None

    async with make_manager(resource_pool_size=1) as manager:
        async with asyncio.timeout(5):
            error = await manager.run_task(stops_its_manager)
        assert isinstance(error, RuntimeError)
        assert manager.stats().state == "running"
        assert await manager.run_task(echo, 2) == 2  # the mark is gone once the run is over
    assert manager.stats().state == "stopped"


async def test_a_task_may_stop_its_manager_from_a_task_of_its_own(make_manager: Factory) -> None:
    stoppers: list[asyncio.Task[None]] = []

    async def spawns_a_stop(resource: Resource) -> str:
        stoppers.append(asyncio.create_task(manager.stop()))
        await asyncio.sleep(0)  # the stop has begun, and waits for this task
        return "finished first"

    manager = make_manager()
    await manager.start()
    async with asyncio.timeout(5):
        assert await manager.queue_task(spawns_a_stop) == "finished first"
        await stoppers[0]
    assert manager.stats().state == "stopped"


async def test_stopping_another_manager_from_a_task_is_fine(make_manager: Factory, tracker: Tracker) -> None:
    other = AsyncManager(make_config(tracker))
    await other.start()

    async def stops_the_other(resource: Resource) -> str:
        await other.stop()
        return other.stats().state

    async with make_manager() as manager:
        async with asyncio.timeout(5):
            assert await manager.queue_task(stops_the_other) == "stopped"


async def test_kill_from_inside_a_task_cancels_that_run_and_completes(make_manager: Factory, tracker: Tracker) -> None:
    async def kills_its_manager(resource: Resource) -> str:
        await manager.kill()
        return "kill returned"  # never: the kill cancels this run too

    manager = make_manager(worker_count=1)
    await manager.start()
    async with asyncio.timeout(5):
        killer = manager.submit_nowait(kills_its_manager)
        queued = manager.submit_nowait(echo, 1)
        with pytest.raises(TaskAbortedError):
            await killer
        with pytest.raises(TaskAbortedError):
            await queued
        await manager.kill()
    assert manager.stats().state == "killed"
    assert tracker.balanced()


async def test_kill_from_inside_a_run_task_body_ends_that_run(make_manager: Factory, tracker: Tracker) -> None:
    async def kills_its_manager(resource: Resource) -> str:
        await manager.kill()
        return "kill returned"

    manager = make_manager(resource_pool_size=1)
    await manager.start()
    async with asyncio.timeout(5):
        with pytest.raises(TaskAbortedError):
            await manager.run_task(kills_its_manager)
        await manager.kill()
    assert manager.stats().state == "killed"
    assert tracker.balanced()


# -- timeouts ------------------------------------------------------------------------------

BAD_SECONDS = [math.nan, math.inf, -1.0, 10**400, True, "1"]


def _short(value: object) -> str:
    return "10**400" if value == 10**400 else repr(value)


@pytest.mark.parametrize("timeout", [v for v in BAD_SECONDS if v is not math.inf], ids=_short)
async def test_stop_refuses_a_timeout_that_is_not_finite_seconds(make_manager: Factory, timeout: Any) -> None:
    async with make_manager() as manager:
        with pytest.raises(ValueError, match=r"timeout must be a finite number of seconds >= 0"):
            await manager.stop(timeout=timeout)
        assert manager.stats().state == "running"
        assert await manager.queue_task(echo, 1) == 1


async def test_stop_with_an_infinite_timeout_waits_as_long_as_it_takes(make_manager: Factory) -> None:
    release = asyncio.Event()

    async def held(resource: Resource) -> str:
        await release.wait()
        return "drained"

    async with make_manager() as manager:
        handle = await manager.submit(held)
        stopping = asyncio.ensure_future(manager.stop(timeout=math.inf))
        await wait_for(lambda: manager.stats().state == "stopping")
        release.set()
        await stopping
        assert await handle == "drained"
        assert manager.stats().state == "stopped"


@pytest.mark.parametrize("timeout", [*BAD_SECONDS, 0], ids=_short)
async def test_a_task_timeout_that_is_not_finite_seconds_is_refused_by_name(
    make_manager: Factory, timeout: Any
) -> None:
    message = r"timeout must be a finite number of seconds > 0"
    async with make_manager(resource_pool_size=1) as manager:
        with pytest.raises(ValueError, match=message):
            await manager.submit(echo, 1, timeout=timeout)
        with pytest.raises(ValueError, match=message):
            manager.submit_nowait(echo, 1, timeout=timeout)
        with pytest.raises(ValueError, match=message):
            await manager.queue_task(echo, 1, timeout=timeout)
        with pytest.raises(ValueError, match=message):
            await manager.run_task(echo, 1, timeout=timeout)
        with pytest.raises(ValueError, match=message):
            manager.submit_threadsafe(echo, 1, timeout=timeout)
        with pytest.raises(ValueError, match=message):
            manager.map(echo, [1], timeout=timeout)
        assert manager.metrics().total_tasks_arrived == 0


# -- queue_task_with_callback: the callback always runs ---------------------------------


def _in_thread(call: Callable[[], object]) -> None:
    thread = threading.Thread(target=call)
    thread.start()
    thread.join(5)
    assert not thread.is_alive()


async def test_the_callback_runs_when_called_with_no_loop_before_start(make_manager: Factory) -> None:
    manager = make_manager()
    got: list[tuple[Any, BaseException | None, bool]] = []

    def callback(result: Any, exc: BaseException | None) -> None:
        got.append((result, exc, threading.current_thread() is threading.main_thread()))

    async def async_callback(result: Any, exc: BaseException | None) -> None:
        await asyncio.sleep(0)
        got.append((result, exc, threading.current_thread() is threading.main_thread()))

    _in_thread(lambda: manager.queue_task_with_callback(echo, callback, 1))
    _in_thread(lambda: manager.queue_task_with_callback(echo, async_callback, 1))
    # Called synchronously, in the calling thread: there is no loop to call it on.
    assert [(r, type(e), main) for r, e, main in got] == [(None, ManagerNotRunningError, False)] * 2


async def test_the_callback_gets_an_error_naming_submit_threadsafe_from_another_thread(make_manager: Factory) -> None:
    got: list[tuple[Any, BaseException | None, bool]] = []
    called = asyncio.Event()

    def callback(result: Any, exc: BaseException | None) -> None:
        got.append((result, exc, threading.current_thread() is threading.main_thread()))
        called.set()

    async with make_manager() as manager:
        assert await manager.queue_task(echo, "local") == "local"
        _in_thread(lambda: manager.queue_task_with_callback(echo, callback, 1))
        async with asyncio.timeout(5):
            await called.wait()
        await asyncio.sleep(0)
        ((result, error, on_the_loop),) = got  # exactly once
        assert result is None
        assert on_the_loop
        assert isinstance(error, RuntimeError)
        assert "queue_task_with_callback() called from a different event loop/thread" in str(error)
        assert "submit_threadsafe" in str(error)
        assert manager.metrics().total_tasks_arrived == 1
