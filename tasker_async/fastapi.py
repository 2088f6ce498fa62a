"""FastAPI and Starlette glue: one manager for the life of the application.

Needs the ``fastapi`` extra (``pip install 'tasker-async[fastapi]'``); plain
Starlette works too::

    from fastapi import Depends, FastAPI
    from tasker_async.fastapi import get_manager, manager_lifespan

    app = FastAPI(lifespan=manager_lifespan(Config(on_create=connect, on_destroy=close)))


    @app.get("/users/{user_id}")
    async def read_user(user_id: int, manager: AsyncManager[Connection] = Depends(get_manager)) -> dict:
        return await manager.queue_task(fetch_user, user_id)

The lifespan starts the manager before the first request, keeps it on
``app.state.tasker``, and at shutdown (after the server has finished the
requests in flight) stops it gracefully: queued and running tasks finish,
then every resource is destroyed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Protocol, TypeVar

from ._api.hosting import ManagerSource, check_stop_timeout, hosted_manager
from ._api.manager import AsyncManager
from ._core.config import Config

try:
    # Needed at run time, not only for type checking: FastAPI reads the
    # annotation of get_manager's parameter to know it must pass the request.
    from starlette.requests import HTTPConnection
except ImportError as exc:  # pragma: no cover - exercised with the extra uninstalled
    raise ImportError(
        "tasker_async.fastapi needs FastAPI or Starlette: install the extra, pip install 'tasker-async[fastapi]'"
    ) from exc

__all__ = ("DEFAULT_STATE_KEY", "get_manager", "manager_dependency", "manager_lifespan")

R = TypeVar("R")

DEFAULT_STATE_KEY = "tasker"
"""The attribute of ``app.state`` that holds the manager unless told otherwise."""


class _HasState(Protocol):
    """An application with a ``state`` namespace, as Starlette and FastAPI have."""

    @property
    def state(self) -> Any:
        """The application's state namespace."""


def manager_lifespan(
    config: ManagerSource[R],
    *,
    state_key: str = DEFAULT_STATE_KEY,
    stop_timeout: float | None = None,
) -> Callable[[_HasState], AbstractAsyncContextManager[None]]:
    """Make a lifespan that runs an ``AsyncManager`` for as long as the application.

    Pass the result as ``FastAPI(lifespan=...)`` or ``Starlette(lifespan=...)``,
    or enter it from your own lifespan (``async with lifespan(app):``) to
    combine it with other setup. At startup it builds and starts the
    manager and sets ``app.state.<state_key>``; at shutdown it calls
    ``manager.stop(timeout=stop_timeout)``. If the application's startup
    fails after it, or the lifespan is cancelled, it kills the manager
    instead.

    Args:
        config: a ``Config`` (a fresh manager is made from it at each
            startup), or a function called at each startup that returns a
            ``Config`` or a not-yet-started ``AsyncManager`` (to instrument
            it first, say).
        state_key: the ``app.state`` attribute that holds the manager.
        stop_timeout: seconds the shutdown drain may take before the
            manager is killed (``None``: as long as it takes).

    Returns:
        A function of the application returning an async context manager.

    Raises:
        ValueError: ``state_key`` is not an identifier or ``stop_timeout``
            is not a number >= 0.
        TypeError: ``config`` is neither a ``Config`` nor callable.
    """
    _check_key(state_key)
    check_stop_timeout(stop_timeout)
    if not isinstance(config, Config) and not callable(config):
        raise TypeError(f"expected a tasker_async.Config or a function returning one, got {config!r}")

    @asynccontextmanager
    async def lifespan(app: _HasState) -> AsyncIterator[None]:
        async with hosted_manager(config, stop_timeout) as manager:
            setattr(app.state, state_key, manager)
            yield

    return lifespan


def _check_key(state_key: str) -> None:
    if not isinstance(state_key, str) or not state_key.isidentifier():
        raise ValueError(f"state_key must be a Python identifier, got {state_key!r}")


def _lookup(connection: HTTPConnection, state_key: str) -> AsyncManager[Any]:
    manager = getattr(connection.app.state, state_key, None)
    if manager is None:
        raise RuntimeError(
            f"no tasker_async manager on app.state.{state_key}: create the application with "
            f"lifespan=tasker_async.fastapi.manager_lifespan(config) (or enter that lifespan in yours)"
        )
    if not isinstance(manager, AsyncManager):
        raise RuntimeError(f"app.state.{state_key} holds {manager!r}, not a tasker_async.AsyncManager")
    return manager


def get_manager(request: HTTPConnection) -> AsyncManager[Any]:
    """Return the application's manager; a FastAPI dependency, ``Depends(get_manager)``.

    Works in HTTP and WebSocket endpoints, and called directly with a
    Starlette ``Request``.

    Args:
        request: the request (or WebSocket) being served.

    Returns:
        The manager :func:`manager_lifespan` put on ``app.state.tasker``.

    Raises:
        RuntimeError: the application was not created with
            :func:`manager_lifespan`, or its lifespan has not run.
    """
    return _lookup(request, DEFAULT_STATE_KEY)


def manager_dependency(state_key: str = DEFAULT_STATE_KEY) -> Callable[[HTTPConnection], AsyncManager[Any]]:
    """Make a dependency like :func:`get_manager` for a manager kept under another ``state_key``.

    Useful when one application runs several managers::

        get_scraper = manager_dependency("scraper")
        app = FastAPI(lifespan=manager_lifespan(scraper_config, state_key="scraper"))

    Args:
        state_key: the ``app.state`` attribute given to :func:`manager_lifespan`.

    Returns:
        A function of the request (or WebSocket) returning the manager; it
        raises ``RuntimeError`` when no manager is there.

    Raises:
        ValueError: ``state_key`` is not an identifier.
    """
    _check_key(state_key)

    def dependency(request: HTTPConnection) -> AsyncManager[Any]:
        return _lookup(request, state_key)

    dependency.__name__ = dependency.__qualname__ = f"get_manager_{state_key}"
    return dependency
