"""tasker_async.fastapi: the lifespan and the dependency, in process (the live server is in test_integrations)."""

from __future__ import annotations

import asyncio
import importlib
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from types import SimpleNamespace
from typing import Annotated, Any

import httpx
import pytest
from fastapi import Depends, FastAPI
from starlette.requests import Request

from tasker_async import AsyncManager, ManagerNotRunningError, ResourceCreationError, TaskAbortedError
from tasker_async.fastapi import DEFAULT_STATE_KEY, get_manager, manager_dependency, manager_lifespan

from .conftest import Resource, Tracker, make_config, wait_for

# Module level: FastAPI resolves the (string) annotations of endpoints in the module's globals.
get_users = manager_dependency("users")
get_reports = manager_dependency("reports")


class App:
    """The least a lifespan needs: an application with a ``state`` namespace."""

    def __init__(self) -> None:
        self.state = SimpleNamespace()


class Gate:
    """A task body that waits for ``open``."""

    def __init__(self) -> None:
        self.open = asyncio.Event()
        self.started = 0

    async def __call__(self, resource: Resource, value: int) -> int:
        self.started += 1
        await self.open.wait()
        return value


def open_when(gate: Gate, predicate: Callable[[], bool]) -> asyncio.Task[None]:
    async def opener() -> None:
        await wait_for(predicate)
        gate.open.set()

    return asyncio.create_task(opener())


async def test_the_lifespan_runs_a_manager_and_drains_it_at_shutdown(tracker: Tracker) -> None:
    app = App()
    gate = Gate()
    async with manager_lifespan(make_config(tracker))(app):
        manager: AsyncManager[Resource] = getattr(app.state, DEFAULT_STATE_KEY)
        assert manager.stats().state == "running"
        handles = [await manager.submit(gate, n) for n in range(5)]  # two run, three wait
        await wait_for(lambda: gate.started == 2)
        # Released only once shutdown has begun: the drain must wait for all five.
        opener = open_when(gate, lambda: manager.stats().state == "stopping")
    await opener
    assert [await h for h in handles] == list(range(5))
    assert manager.stats().state == "stopped"
    assert tracker.balanced()
    assert app.state.tasker is manager  # still there, so late callers get ManagerNotRunningError
    with pytest.raises(ManagerNotRunningError):
        await manager.queue_task(gate, 1)


async def test_each_startup_makes_a_fresh_manager(tracker: Tracker) -> None:
    lifespan = manager_lifespan(make_config(tracker))
    app = App()
    managers = []
    for _ in range(2):
        async with lifespan(app):
            managers.append(app.state.tasker)
    assert managers[0] is not managers[1]
    assert [m.stats().state for m in managers] == ["stopped", "stopped"]
    assert len(tracker.created) == 4
    assert tracker.balanced()


async def test_a_factory_may_return_a_config_or_a_manager(tracker: Tracker) -> None:
    made: list[AsyncManager[Resource]] = []

    def build() -> AsyncManager[Resource]:
        made.append(AsyncManager(make_config(tracker)))
        return made[-1]

    app = App()
    async with manager_lifespan(build)(app):
        assert app.state.tasker is made[0]
    async with manager_lifespan(lambda: make_config(tracker, worker_count=3))(app):
        assert app.state.tasker.stats().base_workers == 3
    assert tracker.balanced()


async def test_a_factory_returning_anything_else_fails_at_startup() -> None:
    with pytest.raises(TypeError, match=r"not a tasker_async\.Config or AsyncManager"):
        async with manager_lifespan(lambda: "nonsense")(App()):  # type: ignore[arg-type, return-value]
            pass


async def test_a_failing_on_create_fails_the_startup_and_leaks_nothing(tracker: Tracker) -> None:
    tracker.fail_next = 1
    app = App()
    with pytest.raises(ResourceCreationError):
        async with manager_lifespan(make_config(tracker))(app):
            pytest.fail("the application must not start")
    assert not hasattr(app.state, "tasker")
    assert tracker.balanced()


async def test_an_error_during_the_lifespan_kills_the_manager(tracker: Tracker) -> None:
    app = App()
    gate = Gate()
    handles = []

    async def crash() -> None:
        async with manager_lifespan(make_config(tracker))(app):
            handles.extend([await app.state.tasker.submit(gate, n) for n in range(3)])
            await wait_for(lambda: gate.started == 2)
            raise ZeroDivisionError

    with pytest.raises(ZeroDivisionError):
        await crash()
    assert app.state.tasker.stats().state == "killed"
    for handle in handles:
        with pytest.raises(TaskAbortedError):
            await handle
    assert tracker.balanced()


async def test_stop_timeout_kills_what_does_not_drain_in_time(tracker: Tracker) -> None:
    app = App()
    gate = Gate()  # never opened
    async with manager_lifespan(make_config(tracker), stop_timeout=0.05)(app):
        handle = await app.state.tasker.submit(gate, 1)
        await wait_for(lambda: gate.started == 1)
    assert app.state.tasker.stats().state == "killed"
    with pytest.raises(TaskAbortedError):
        await handle
    assert tracker.balanced()


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"state_key": "not a name"}, ValueError, "state_key"),
        ({"stop_timeout": -1}, ValueError, "stop_timeout"),
        ({"stop_timeout": True}, ValueError, "stop_timeout"),
    ],
)
def test_options_are_checked_when_the_lifespan_is_made(
    tracker: Tracker, kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        manager_lifespan(make_config(tracker), **kwargs)


def test_a_config_that_is_neither_a_config_nor_callable_is_refused() -> None:
    with pytest.raises(TypeError, match="Config"):
        manager_lifespan(42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="state_key"):
        manager_dependency("0bad")


def test_get_manager_without_the_lifespan_says_how_to_install_it() -> None:
    request = Request({"type": "http", "app": FastAPI()})
    with pytest.raises(RuntimeError, match=r"lifespan=tasker_async\.fastapi\.manager_lifespan\(config\)"):
        get_manager(request)
    app = FastAPI()
    app.state.tasker = "not a manager"
    with pytest.raises(RuntimeError, match=r"not a tasker_async\.AsyncManager"):
        get_manager(Request({"type": "http", "app": app}))


async def test_the_dependency_without_the_lifespan_fails_the_request() -> None:
    app = FastAPI()

    @app.get("/")
    async def read(manager: Annotated[AsyncManager[Any], Depends(get_manager)]) -> str:
        return repr(manager)

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        with pytest.raises(RuntimeError, match=r"no tasker_async manager on app\.state\.tasker"):
            await client.get("/")


async def test_dependencies_find_managers_under_their_state_keys(tracker: Tracker) -> None:
    users = manager_lifespan(make_config(tracker, worker_count=1), state_key="users")
    reports = manager_lifespan(make_config(tracker, worker_count=3), state_key="reports")

    @asynccontextmanager
    async def both(app: FastAPI) -> AsyncIterator[None]:
        async with users(app), reports(app):
            yield

    app = FastAPI(lifespan=both)

    async def identity(resource: Resource) -> int:
        return resource.id

    @app.get("/")
    async def read(
        u: Annotated[AsyncManager[Resource], Depends(get_users)],
        r: Annotated[AsyncManager[Resource], Depends(get_reports)],
    ) -> list[int]:
        return [u.stats().base_workers, r.stats().base_workers, await u.queue_task(identity)]

    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            response = await client.get("/")
        assert response.status_code == 200
        assert response.json()[:2] == [1, 3]
    assert app.state.users.stats().state == app.state.reports.stats().state == "stopped"
    assert tracker.balanced()


def test_a_missing_starlette_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "starlette.requests", None)
    monkeypatch.delitem(sys.modules, "tasker_async.fastapi")
    with pytest.raises(ImportError, match=r"pip install 'tasker-async\[fastapi\]'"):
        importlib.import_module("tasker_async.fastapi")
