"""Async lifecycle hooks are refused where they are registered: they would never be awaited."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from tasker_async import AsyncManager, Config, ConfigError, LifecycleEvent, TaskEvent

from .conftest import Resource

Factory = Callable[..., AsyncManager[Resource]]


async def async_hook(event: LifecycleEvent) -> None: ...


async def async_hook_with_options(event: LifecycleEvent, *, label: str) -> None: ...


async def async_generator_hook(event: LifecycleEvent) -> AsyncIterator[None]:
    yield


class AsyncCallable:
    async def __call__(self, event: LifecycleEvent) -> None: ...


class Handler:
    async def on_event(self, event: LifecycleEvent) -> None: ...


ASYNC_HOOKS = [
    pytest.param(async_hook, id="async-def"),
    pytest.param(AsyncCallable(), id="async-call-object"),
    pytest.param(functools.partial(async_hook_with_options, label="x"), id="partial-of-async-def"),
    pytest.param(functools.partial(AsyncCallable()), id="partial-of-async-call-object"),
    pytest.param(Handler().on_event, id="async-bound-method"),
    pytest.param(async_generator_hook, id="async-generator"),
]


@pytest.mark.parametrize("hook", ASYNC_HOOKS)
def test_config_refuses_an_async_hook(hook: Any) -> None:
    with pytest.raises(ConfigError, match=r"Config\.hooks .*async.*create_task") as caught:
        Config(on_create=object, hooks=[print, hook])
    assert caught.value.field == "hooks"


@pytest.mark.parametrize("hook", ASYNC_HOOKS)
async def test_add_hook_refuses_an_async_hook(make_manager: Factory, hook: Any) -> None:
    async with make_manager(worker_count=1) as manager:
        with pytest.raises(TypeError, match=r"async.*create_task"):
            manager.add_hook(hook)
        # Nothing was registered: a task's events would otherwise call it and leave a coroutine never awaited.
        assert await manager.queue_task(_resource_id) >= 0


async def _resource_id(resource: Resource) -> int:
    return resource.id


class SyncCallable:
    def __init__(self) -> None:
        self.kinds: list[str] = []

    def __call__(self, event: LifecycleEvent) -> None:
        self.kinds.append(type(event).__name__)


async def test_sync_hooks_of_every_shape_are_accepted_and_run(make_manager: Factory) -> None:
    seen: list[LifecycleEvent] = []

    def plain(event: LifecycleEvent) -> None:
        seen.append(event)

    def with_options(event: LifecycleEvent, *, sink: list[LifecycleEvent]) -> None:
        sink.append(event)

    by_partial: list[LifecycleEvent] = []
    callable_object = SyncCallable()
    async with make_manager(
        worker_count=1, hooks=[plain, callable_object, functools.partial(with_options, sink=by_partial)]
    ) as manager:
        by_lambda: list[LifecycleEvent] = []
        manager.add_hook(lambda event: by_lambda.append(event))
        await manager.queue_task(_resource_id)
    assert [type(e).__name__ for e in seen] == callable_object.kinds
    assert by_partial == seen
    assert "WorkerEvent" in callable_object.kinds
    assert [e.kind for e in by_lambda if isinstance(e, TaskEvent)] == ["queued", "started", "succeeded"]


async def test_a_sync_hook_can_hand_async_work_to_the_loop(make_manager: Factory) -> None:
    # The way the refusal message suggests: schedule the coroutine, keep a reference until it is done.
    handled: list[str] = []
    pending: set[asyncio.Task[None]] = set()
    done = asyncio.Event()

    async def handle(event: LifecycleEvent) -> None:
        handled.append(type(event).__name__)
        done.set()

    def hook(event: LifecycleEvent) -> None:
        task = asyncio.get_running_loop().create_task(handle(event))
        pending.add(task)
        task.add_done_callback(pending.discard)

    async with make_manager(worker_count=1, hooks=[hook]) as manager:
        await manager.queue_task(_resource_id)
        await done.wait()
    await asyncio.gather(*pending)
    assert "TaskEvent" in handled
