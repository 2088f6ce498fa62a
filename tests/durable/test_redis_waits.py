"""RedisStore's wait for ready jobs: cut short, it returns at once and leaves its look at the engine to finish."""

from __future__ import annotations

import uuid
from typing import Any

import anyio
import pytest

from tasker_async.durable import RedisStore

from .servers.redis_server import RedisServer

pytestmark = pytest.mark.timeout(30)


async def test_a_wait_cut_short_returns_before_its_look_answers_and_the_store_waits_for_the_look(
    redis_server: RedisServer,
) -> None:
    # A consumer's wait is cut short when a run ends: its outcome goes out at once, not after the look's answer.
    gate, looking = anyio.Event(), anyio.Event()
    async with RedisStore(redis_server.url, prefix=f"test-{uuid.uuid4().hex[:12]}") as store:
        run = store._run
        answered: list[Any] = []

        async def slow(name: str, *args: Any) -> Any:
            if name == "ready":
                looking.set()
                await gate.wait()
                answered.append(await run(name, *args))
                return answered[-1]
            return await run(name, *args)

        store._run = slow  # type: ignore[method-assign]  # the look waits for the test's gate
        with anyio.fail_after(10), anyio.CancelScope() as wait:
            async with anyio.create_task_group() as group:

                async def cut_short() -> None:
                    await looking.wait()
                    wait.cancel()

                group.start_soon(cut_short)
                await store.wait_ready(["default"], 30.0)
        assert wait.cancelled_caught
        assert not gate.is_set()  # it returned while its look still waited
        gate.set()
    # Leaving the store waited for the look, which got its answer on a connection still open.
    assert answered == [[0, b""]]
