"""Misuse caught at submission: a task function that cannot work, a call from the wrong loop or thread.

Every submission runs :func:`check_task` (the manager skips it when the
function is the one it checked last), so it is built to cost one dict lookup
in the steady state: a function found fine is remembered. The caller's checks
are the manager's own (``_api.base``): it remembers the loop's thread.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
from collections.abc import Awaitable, Callable
from types import FunctionType, MethodType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .._core.config import LoggerProtocol
    from .callbacks import CallbackRunner, ResultCallback

__all__ = ("ACCEPTED", "NO_TASK", "call_back_from_anywhere", "check_task", "wrong_loop")

_COROUTINE_CODE = inspect.CO_COROUTINE | inspect.CO_ITERABLE_COROUTINE  # async def, @types.coroutine
_SHAPE = "tasks must be 'async def fn(resource, ...)'"

# Task functions found fine. Only functions that capture nothing are kept: module-level
# functions and methods' functions, which live on anyway; a closure made afresh for each
# call would be kept alive here for nothing, and would never be looked up again.
ACCEPTED: dict[Callable[..., Any], None] = {}
_MAX_ACCEPTED = 1024  # past this (functions made at run time), start over rather than hoard


def check_task(fn: object) -> None:
    """Refuse ``fn`` if it surely cannot be a task function ``async def fn(resource, ...)``.

    Surely: it is not callable; it is an async generator function; or it is a
    plain ``def`` function (also behind ``functools.partial`` or a bound
    method) whose code is not a coroutine's. A callable object, a builtin, a
    lambda or a decorator's wrapper (``__wrapped__``) may return an awaitable:
    what they return is known only once they run.

    Raises:
        TypeError: ``fn`` cannot be a task function; the message names it.
    """
    try:
        if fn in ACCEPTED:
            return
    except TypeError:  # an unhashable callable object: never cached, checked every time
        pass
    target = fn
    while True:  # what calling ``fn`` calls, in the end
        if type(target) is MethodType:
            target = target.__func__
        elif isinstance(target, functools.partial):
            target = target.func
        else:
            break
    if type(target) is not FunctionType:
        if not callable(fn):
            raise TypeError(f"fn must be an async function: {_SHAPE}; got {fn!r}")
        return
    if target is not fn and target in ACCEPTED:
        return
    fault = _fault(target)
    if fault is not None:
        raise TypeError(f"task function {target.__module__}.{target.__qualname__} {fault}: {_SHAPE}")
    if target.__closure__ is None:
        if len(ACCEPTED) >= _MAX_ACCEPTED:
            ACCEPTED.clear()
        ACCEPTED[target] = None


def _fault(function: FunctionType) -> str | None:
    """What makes ``function`` unfit to be a task function, or ``None`` if it may be one."""
    flags = function.__code__.co_flags
    if flags & inspect.CO_ASYNC_GENERATOR:
        return "is an async generator function (it yields values; a task returns one)"
    if flags & _COROUTINE_CODE or inspect.iscoroutinefunction(function):  # also inspect.markcoroutinefunction
        return None
    if function.__name__ == "<lambda>" or hasattr(function, "__wrapped__"):
        return None  # ``lambda r: fetch(r, url)`` and a decorator's wrapper may return a coroutine
    if flags & inspect.CO_GENERATOR:
        return "is a generator function, not an async function"
    return "is a plain function, not an async function"


NO_TASK = object()  # what a manager has checked before its first submission


def wrong_loop(method: str) -> RuntimeError:
    """The error of a submission made outside the manager's event loop (another loop, or another thread)."""
    return RuntimeError(
        f"{method}() called from a different event loop/thread than the manager's; "
        "use manager.submit_threadsafe(...) (from a thread) and await asyncio.wrap_future() of its result"
    )


def call_back_from_anywhere(
    loop: asyncio.AbstractEventLoop | None,
    runner: CallbackRunner,
    callback: ResultCallback,
    error: BaseException,
    log: logging.Logger | LoggerProtocol,
) -> None:
    """Call ``callback(None, error)`` exactly once, for a caller on any thread, in or out of a loop.

    On the manager's ``loop`` while it runs, where an async callback is
    tracked like any other; else on the caller's own loop; else here and now,
    an async callback being run to completion in a loop of its own.
    """
    if loop is not None and loop.is_running():
        try:
            loop.call_soon_threadsafe(runner.call, callback, None, error)
        except RuntimeError:  # closed in the meantime: no one else will call it
            pass
        else:
            return
    running = asyncio._get_running_loop()
    if running is not None:
        running.call_soon(runner.call, callback, None, error)
        return
    try:
        outcome = callback(None, error)
        if inspect.isawaitable(outcome):
            asyncio.run(_awaited(outcome))
    except Exception:
        log.error("a task callback raised", exc_info=True)


async def _awaited(awaitable: Awaitable[object]) -> None:
    await awaitable
