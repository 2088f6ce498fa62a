"""aiohttp glue: one manager for the life of a ``web.Application``.

Needs the ``aiohttp`` extra (``pip install 'tasker-async[aiohttp]'``)::

    from aiohttp import web
    from tasker_async.aiohttp import get_manager, setup


    async def read_user(request: web.Request) -> web.Response:
        manager = get_manager(request)
        return web.json_response(await manager.queue_task(fetch_user, int(request.match_info["id"])))


    app = web.Application()
    setup(app, Config(on_create=connect, on_destroy=close))
    app.router.add_get("/users/{id}", read_user)

:func:`setup` registers a ``cleanup_ctx`` entry: the manager starts with the
application and is stopped gracefully at its cleanup, which aiohttp runs
after the requests in flight have finished: queued and running tasks
finish, then every resource is destroyed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, TypeVar

from ._api.hosting import ManagerSource, check_stop_timeout, hosted_manager
from ._api.manager import AsyncManager
from ._core.config import Config

try:
    from aiohttp import web
except ImportError as exc:  # pragma: no cover - exercised with the extra uninstalled
    raise ImportError(
        "tasker_async.aiohttp needs aiohttp: install the extra, pip install 'tasker-async[aiohttp]'"
    ) from exc

__all__ = ("MANAGER_KEY", "get_manager", "setup")

R = TypeVar("R")

MANAGER_KEY: web.AppKey[AsyncManager[Any]] = web.AppKey("tasker_async.manager", AsyncManager)
"""The application key :func:`setup` stores the manager under unless told otherwise."""


def setup(
    app: web.Application,
    config: ManagerSource[R],
    *,
    key: web.AppKey[AsyncManager[R]] = MANAGER_KEY,
    stop_timeout: float | None = None,
) -> None:
    """Run an ``AsyncManager`` for as long as ``app``.

    Appends to ``app.cleanup_ctx`` a context that, at startup, builds and
    starts the manager and stores it as ``app[key]``, and at cleanup calls
    ``manager.stop(timeout=stop_timeout)``. Call it before the application
    starts; its order among ``cleanup_ctx`` entries is the order of
    startup (cleanup runs in reverse).

    Args:
        app: the application.
        config: a ``Config`` (a fresh manager is made from it at each
            startup), or a function called at startup that returns a
            ``Config`` or a not-yet-started ``AsyncManager`` (to instrument
            it first, say).
        key: the application key to store the manager under; make your own
            ``web.AppKey("...", AsyncManager)`` to run several managers, or
            to type the resource.
        stop_timeout: seconds the cleanup drain may take before the manager
            is killed (``None``: as long as it takes).

    Raises:
        TypeError: ``config`` is neither a ``Config`` nor callable, or
            ``key`` is not a ``web.AppKey``.
        ValueError: ``stop_timeout`` is not a number >= 0.
        RuntimeError: ``app`` has already started (its ``cleanup_ctx`` is frozen).
    """
    if not isinstance(config, Config) and not callable(config):
        raise TypeError(f"expected a tasker_async.Config or a function returning one, got {config!r}")
    if not isinstance(key, web.AppKey):
        raise TypeError(f"key must be an aiohttp.web.AppKey, got {key!r}")
    check_stop_timeout(stop_timeout)

    async def manager_context(app: web.Application) -> AsyncIterator[None]:
        async with hosted_manager(config, stop_timeout) as manager:
            app[key] = manager
            yield

    app.cleanup_ctx.append(manager_context)


def get_manager(
    request_or_app: web.Request | web.Application,
    *,
    key: web.AppKey[AsyncManager[R]] = MANAGER_KEY,
) -> AsyncManager[R]:
    """Return the manager :func:`setup` started for the application.

    From a request, the manager of the application that serves it or of any
    application it is nested in (``request.config_dict``).

    Args:
        request_or_app: the request being served, or the application.
        key: the key given to :func:`setup`.

    Returns:
        The manager.

    Raises:
        RuntimeError: :func:`setup` was not called on the application, or
            the application has not started yet.
    """
    if isinstance(request_or_app, web.Application):
        manager = request_or_app.get(key)
    else:
        manager = request_or_app.config_dict.get(key)
    if manager is None:
        raise RuntimeError(
            f"no tasker_async manager under {key!r}: call tasker_async.aiohttp.setup(app, config) "
            "before the application starts (and look it up once it has started)"
        )
    return manager
