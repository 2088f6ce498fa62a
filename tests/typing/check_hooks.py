"""mypy --strict: any sync callable of one positional event argument is a lifecycle hook.

Checked by ``mypy --strict tests/typing`` (and ``tests/test_typing.py``), never run. Each
``# type: ignore[...]`` line is a use that must be rejected: warn_unused_ignores fails the
check if it is ever accepted.
"""

from __future__ import annotations

import functools

from tasker_async import AsyncManager, Config, LifecycleEvent, LifecycleHook, TaskEvent


def hook(ev: LifecycleEvent) -> None: ...


def on_anything(value: object) -> None: ...


def on_event(event: LifecycleEvent, *, label: str = "") -> None: ...


def labelled(label: str, event: LifecycleEvent) -> None: ...


class Counter:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self, e: LifecycleEvent) -> None:
        self.count += 1

    def record(self, event: LifecycleEvent) -> None:
        self.count += 1


async def async_hook(event: LifecycleEvent) -> None: ...


def task_only(event: TaskEvent) -> None: ...


def two_arguments(event: LifecycleEvent, extra: int) -> None: ...


def check_hooks_in_config() -> None:
    counter = Counter()
    Config(on_create=object, hooks=[hook])
    Config(on_create=object, hooks=[lambda event: None])
    Config(on_create=object, hooks=[print])
    Config(on_create=object, hooks=[hook, on_anything, on_event, counter, counter.record])
    Config(on_create=object, hooks=(functools.partial(labelled, "db"),))
    hooks: list[LifecycleHook] = [hook, lambda e: print(e)]
    Config(on_create=object, hooks=hooks)


def check_hooks_added_later(manager: AsyncManager[object]) -> None:
    seen: list[LifecycleEvent] = []
    manager.add_hook(hook)
    manager.add_hook(lambda event: seen.append(event))
    manager.add_hook(Counter())
    manager.add_hook(seen.append)
    manager.remove_hook(hook)


async def connect() -> object:
    return object()


def check_wrong_hooks_are_rejected(manager: AsyncManager[object]) -> None:
    Config(on_create=connect, hooks=[async_hook])  # type: ignore[list-item]
    Config(on_create=connect, hooks=[task_only])  # type: ignore[list-item]
    Config(on_create=connect, hooks=[two_arguments])  # type: ignore[list-item]
    Config(on_create=connect, hooks=hook)  # type: ignore[call-overload]
    manager.add_hook(async_hook)  # type: ignore[arg-type]
    manager.add_hook(task_only)  # type: ignore[arg-type]
    manager.add_hook(lambda: None)  # type: ignore[arg-type]
