"""RedisStore's wait for ready jobs: cut short, it leaves its look to finish; after a short claim, it needs none."""

from __future__ import annotations

import math
import uuid
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest

from tasker_async.durable import RedisStore
from tasker_async.durable._stores.drained import Drained

from .servers.redis_server import RedisServer
from .test_store_protocol import claim_one, new_job, succeeded

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


# -- after a claim that came up short, the wait for ready jobs needs no look (``_stores/drained.py``)


class Looks:
    """Counts the store's looks at the engine (its ``ready`` script)."""

    def __init__(self, store: RedisStore) -> None:
        self.count = 0
        self._run = store._run
        store._run = self._counted  # type: ignore[method-assign]

    async def _counted(self, name: str, *args: Any) -> Any:
        if name == "ready":
            self.count += 1
        return await self._run(name, *args)


def _prefix() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


async def _heard_after(store: RedisStore, call: Awaitable[object]) -> None:
    """Await ``call``, then wait until ``store`` has heard a message about ready jobs since it began."""
    assert store._watch is not None
    waiters = store._watch.waiters
    heard = waiters.heard
    await call
    with anyio.fail_after(10):
        while waiters.heard == heard:  # noqa: ASYNC110 - the listener's task hears it; nothing to wait on
            await anyio.sleep(0.005)


async def _listening(store: RedisStore) -> None:
    assert store._watch is not None
    with anyio.fail_after(10):
        await store._watch.subscribed.wait()


@asynccontextmanager
async def _after_a_short_claim(redis_server: RedisServer) -> AsyncIterator[tuple[RedisStore, RedisStore]]:
    """A listening store whose claim just came up short, and another store object on the same prefix."""
    prefix = _prefix()
    async with (
        RedisStore(redis_server.url, prefix=prefix) as store,
        RedisStore(redis_server.url, prefix=prefix) as other,
    ):
        await _listening(store)
        assert await store.claim("c1", ["default"], 4) == []
        yield store, other


@pytest.mark.parametrize("exchange", [False, True], ids=["claim", "complete_and_claim"])
async def test_a_wait_after_a_short_claim_sends_no_look(redis_server: RedisServer, exchange: bool) -> None:
    async with RedisStore(redis_server.url, prefix=_prefix()) as store:
        await _listening(store)
        if exchange:
            await store.enqueue(new_job())
            held = await claim_one(store)
            recorded, claims = await store.complete_and_claim([succeeded(held.hold)], "c1", ["default"], 4)
            assert recorded == [True]
        else:
            claims = await store.claim("c1", ["default"], 4)
        assert claims == []
        looks = Looks(store)
        await store.wait_ready(["default"], 0.05)  # nothing comes: it waits out its time
        assert looks.count == 0
        await store.wait_ready(["default"], 0.05)  # a mark serves one wait: this one looks
        assert looks.count == 1


async def test_a_claim_that_takes_its_limit_leaves_the_next_wait_to_look(redis_server: RedisServer) -> None:
    async with RedisStore(redis_server.url, prefix=_prefix()) as store:
        await _listening(store)
        await store.enqueue(new_job())
        await store.claim("c1", ["default"], 4)  # short: marks
        await store.enqueue(new_job())
        assert len(await store.claim("c1", ["default"], 1)) == 1  # took its limit: more may be ready
        looks = Looks(store)
        await store.wait_ready(["default"], 0.05)
        assert looks.count == 1


async def test_a_job_stored_after_a_short_claim_wakes_the_wait(redis_server: RedisServer) -> None:
    async with _after_a_short_claim(redis_server) as (store, other):
        looks = Looks(store)
        with anyio.fail_after(10):
            async with anyio.create_task_group() as group:
                group.start_soon(store.wait_ready, ["default"], 60.0)
                await anyio.wait_all_tasks_blocked()
                await other.enqueue(new_job())
        assert looks.count == 0
        assert len(await store.claim("c1", ["default"], 4)) == 1


async def test_a_job_stored_between_a_short_claim_and_the_wait_is_found_by_a_look(redis_server: RedisServer) -> None:
    async with _after_a_short_claim(redis_server) as (store, other):
        await _heard_after(store, other.enqueue(new_job()))
        with anyio.fail_after(10):
            looks = Looks(store)
            await store.wait_ready(["default"], 60.0)  # the message came before the wait: it looks, finds the job
        assert looks.count == 1
        assert len(await store.claim("c1", ["default"], 4)) == 1


async def test_a_delayed_job_wakes_a_wait_after_a_short_claim_when_it_is_due(redis_server: RedisServer) -> None:
    async with RedisStore(redis_server.url, prefix=_prefix()) as store:
        await _listening(store)
        await _heard_after(store, store.enqueue(new_job(delay=0.3)))  # its message comes before the claim
        assert await store.claim("c1", ["default"], 4) == []  # short; its reply tells when the job is due
        looks = Looks(store)
        with anyio.fail_after(10):
            await store.wait_ready(["default"], 60.0)
        assert looks.count == 1  # the one look, when the job's time came
        assert len(await store.claim("c1", ["default"], 4)) == 1


async def test_drained_marks_only_a_short_claim_made_while_listening() -> None:
    drained = Drained()
    drained.claimed(["a"], None, math.inf)  # nobody listened when it was sent: a message may be lost
    assert drained.take(["a"], 0) is None
    drained.claimed(["a"], 3, None)  # it took its limit: more may be ready
    assert drained.take(["a"], 3) is None
    drained.claimed(["a", "b"], 3, 2.0)
    assert drained.take(["a"], 3) is None  # other queues
    look_at = drained.take(["b", "a"], 3)
    assert look_at is not None
    assert look_at > anyio.current_time()
    assert drained.take(["a", "b"], 3) is None  # one wait per mark
    drained.claimed(["a"], 3, math.inf)
    assert drained.take(["a"], 4) is None  # a message came meanwhile: look


async def test_a_message_heard_after_a_short_claim_with_nothing_ready_leaves_the_wait_waiting(
    redis_server: RedisServer,
) -> None:
    # A wait that returned at once on any message would send a claim that a run's outcome then waits behind.
    async with _after_a_short_claim(redis_server) as (store, other):
        await _heard_after(store, other.enqueue(new_job(delay=60.0)))  # a message, and nothing ready
        looks = Looks(store)
        started = anyio.current_time()
        await store.wait_ready(["default"], 0.2)
        assert anyio.current_time() - started >= 0.2  # it waited out its time
        assert looks.count == 1
