"""One manager for the life of a web application: what the FastAPI and aiohttp integrations share."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TypeAlias, TypeVar

import anyio

from .._core.config import Config
from .manager import AsyncManager

__all__ = ("ManagerSource", "build_manager", "check_stop_timeout", "hosted_manager")

R = TypeVar("R")

# A Config makes a fresh manager at each startup (a manager is single-use, an
# application may start more than once, as in tests); a factory may return a
# ready manager, e.g. one already instrumented.
ManagerSource: TypeAlias = Config[R] | Callable[[], Config[R] | AsyncManager[R]]


def check_stop_timeout(stop_timeout: float | None) -> None:
    if stop_timeout is not None and (
        isinstance(stop_timeout, bool) or not isinstance(stop_timeout, (int, float)) or not stop_timeout >= 0
    ):
        raise ValueError(f"stop_timeout must be a number of seconds >= 0 or None, got {stop_timeout!r}")


def build_manager(source: ManagerSource[R]) -> AsyncManager[R]:
    if isinstance(source, Config):
        return AsyncManager(source)
    if not callable(source):
        raise TypeError(f"expected a tasker_async.Config or a function returning one (or a manager), got {source!r}")
    made = source()
    if isinstance(made, AsyncManager):
        return made
    if isinstance(made, Config):
        return AsyncManager(made)
    raise TypeError(f"the factory {source!r} returned {made!r}, not a tasker_async.Config or AsyncManager")


@asynccontextmanager
async def hosted_manager(source: ManagerSource[R], stop_timeout: float | None) -> AsyncIterator[AsyncManager[R]]:
    """Start a manager, yield it, then stop it gracefully (kill it if the block raised)."""
    manager = build_manager(source)
    await manager.start()
    try:
        yield manager
    except BaseException:
        # Startup of something else failed, or the server is being torn down by
        # force: no caller will wait for a drain.
        with anyio.CancelScope(shield=True):
            await manager.kill()
        raise
    try:
        await manager.stop(timeout=stop_timeout)
    except BaseException:
        # Cancelled while draining: a cancelled stop() only stops waiting, so
        # finish the job by force rather than leave workers on a closing loop.
        with anyio.CancelScope(shield=True):
            await manager.kill()
        raise
