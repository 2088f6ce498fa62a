"""tasker_async.aiohttp: setup() through cleanup_ctx, and get_manager (the live examples are in test_integrations)."""

from __future__ import annotations

import asyncio
import importlib
import sys

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from tasker_async import AsyncManager, ManagerNotRunningError, ResourceCreationError, TaskAbortedError
from tasker_async.aiohttp import MANAGER_KEY, get_manager, setup

from .conftest import Resource, Tracker, make_config, wait_for

OTHER: web.AppKey[AsyncManager[Resource]] = web.AppKey("other", AsyncManager)


class Gate:
    """A task body that waits for ``open``."""

    def __init__(self) -> None:
        self.open = asyncio.Event()
        self.started = 0

    async def __call__(self, resource: Resource, value: int) -> int:
        self.started += 1
        await self.open.wait()
        return value


async def identity(resource: Resource) -> int:
    return resource.id


async def test_the_manager_lives_from_startup_to_cleanup_and_drains(tracker: Tracker) -> None:
    app = web.Application()
    setup(app, make_config(tracker))
    assert not tracker.created  # nothing runs before the application starts
    runner = web.AppRunner(app)
    await runner.setup()
    manager: AsyncManager[Resource] = get_manager(app)
    assert manager.stats().state == "running"
    gate = Gate()
    handles = [await manager.submit(gate, n) for n in range(5)]
    await wait_for(lambda: gate.started == 2)

    async def open_when_stopping() -> None:
        await wait_for(lambda: manager.stats().state == "stopping")
        gate.open.set()

    opener = asyncio.create_task(open_when_stopping())
    await runner.cleanup()
    await opener
    assert [await h for h in handles] == list(range(5))
    assert manager.stats().state == "stopped"
    assert tracker.balanced()
    with pytest.raises(ManagerNotRunningError):
        await manager.queue_task(identity)


async def test_a_factory_may_return_a_manager_and_keys_keep_managers_apart(tracker: Tracker) -> None:
    app = web.Application()
    made: list[AsyncManager[Resource]] = []

    def build() -> AsyncManager[Resource]:
        made.append(AsyncManager(make_config(tracker, worker_count=3)))
        return made[-1]

    setup(app, make_config(tracker, worker_count=1))
    setup(app, build, key=OTHER)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        assert get_manager(app).stats().base_workers == 1
        assert get_manager(app, key=OTHER) is made[0]
    finally:
        await runner.cleanup()
    assert get_manager(app).stats().state == made[0].stats().state == "stopped"
    assert tracker.balanced()


async def test_stop_timeout_kills_what_does_not_drain_in_time(tracker: Tracker) -> None:
    app = web.Application()
    setup(app, make_config(tracker), stop_timeout=0.05)
    runner = web.AppRunner(app)
    await runner.setup()
    gate = Gate()  # never opened
    handle = await get_manager(app).submit(gate, 1)
    await wait_for(lambda: gate.started == 1)
    await runner.cleanup()
    assert get_manager(app).stats().state == "killed"
    with pytest.raises(TaskAbortedError):
        await handle
    assert tracker.balanced()


async def test_requests_to_a_nested_application_find_the_parents_manager(tracker: Tracker) -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.json_response(await get_manager(request).queue_task(identity))

    sub = web.Application()
    sub.router.add_get("/id", handler)
    app = web.Application()
    setup(app, make_config(tracker, worker_count=1))
    app.add_subapp("/sub", sub)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        response = await client.get("/sub/id")
        assert response.status == 200
        assert await response.json() == tracker.created[0].id
    assert tracker.balanced()


def test_get_manager_before_setup_or_startup_says_what_to_do(tracker: Tracker) -> None:
    app = web.Application()
    with pytest.raises(RuntimeError, match=r"call tasker_async\.aiohttp\.setup\(app, config\)"):
        get_manager(app)
    setup(app, make_config(tracker))
    with pytest.raises(RuntimeError, match="no tasker_async manager"):
        get_manager(app)  # set up, not started


def test_setup_checks_its_arguments(tracker: Tracker) -> None:
    app = web.Application()
    with pytest.raises(TypeError, match="Config"):
        setup(app, 42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="AppKey"):
        setup(app, make_config(tracker), key="manager")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="stop_timeout"):
        setup(app, make_config(tracker), stop_timeout=-1)
    assert not app.cleanup_ctx
    app.freeze()
    with pytest.raises(RuntimeError):
        setup(app, make_config(tracker))


async def test_a_factory_returning_anything_else_fails_the_startup() -> None:
    app = web.Application()
    setup(app, lambda: "nonsense")  # type: ignore[arg-type, return-value]
    runner = web.AppRunner(app)
    with pytest.raises(TypeError, match=r"not a tasker_async\.Config or AsyncManager"):
        await runner.setup()


async def test_a_failing_on_create_fails_the_startup_and_leaks_nothing(tracker: Tracker) -> None:
    tracker.fail_next = 1
    app = web.Application()
    setup(app, make_config(tracker))
    runner = web.AppRunner(app)
    with pytest.raises(ResourceCreationError):
        await runner.setup()
    assert MANAGER_KEY not in app
    assert tracker.balanced()


def test_the_default_key_is_an_app_key() -> None:
    assert isinstance(MANAGER_KEY, web.AppKey)


def test_a_missing_aiohttp_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "aiohttp", None)
    monkeypatch.delitem(sys.modules, "tasker_async.aiohttp")
    with pytest.raises(ImportError, match=r"pip install 'tasker-async\[aiohttp\]'"):
        importlib.import_module("tasker_async.aiohttp")
