"""``Expected`` and the skipped first look: a waiter on a job its store object just stored waits for the message."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import anyio
import pytest
from anyio.lowlevel import checkpoint

from tasker_async.durable._stores.waiting import EXPECTED_LIMIT, Expected, Park, Waiters, wait_finished


def test_a_job_stored_and_unheard_of_is_unheard_once() -> None:
    expected = Expected()
    expected.add(["a", "b"])
    assert expected.unheard("a")
    assert not expected.unheard("a")  # forgotten: a second waiter looks
    assert not expected.unheard("never stored here")
    assert len(expected) == 1


def test_a_heard_end_makes_the_waiter_look_and_a_retried_store_keeps_it() -> None:
    expected = Expected()
    expected.add(["a"])
    expected.heard(["a", "other"])
    expected.add(["a"])  # the same job stored again (a retried enqueue): what was heard stands
    assert not expected.unheard("a")


def test_discarded_and_forgotten_jobs_are_looked_at() -> None:
    expected = Expected()
    expected.add(["kept", "in use", "x"])
    expected.discard(["in use"])
    assert not expected.unheard("in use")
    waiters = Waiters()
    waiters.expected.add(["y"])
    waiters.wake_all()  # the listener subscribed again: messages may have been lost
    assert not waiters.expected.unheard("y")


def test_only_the_newest_jobs_are_kept() -> None:
    expected = Expected()
    expected.add(str(index) for index in range(EXPECTED_LIMIT + 5))
    assert len(expected) == EXPECTED_LIMIT
    assert not expected.unheard("0")
    assert expected.unheard(str(EXPECTED_LIMIT + 4))


def test_the_listener_hearing_an_end_marks_it() -> None:
    waiters = Waiters()
    waiters.expected.add(["a", "b"])
    waiters.finished(["a"])
    assert not waiters.expected.unheard("a")
    assert waiters.expected.unheard("b")


class _Engine:
    """A job's engine for ``wait_finished``: counts looks; ``end()`` finishes the job and wakes its waiter."""

    def __init__(self) -> None:
        self.looks = 0
        self.done = False
        self.event = anyio.Event()

    async def look(self) -> str | None:
        self.looks += 1
        return "finished" if self.done else None

    @asynccontextmanager
    async def watch(self) -> AsyncIterator[Park]:
        async def park(deadline: float) -> None:
            with anyio.CancelScope(deadline=deadline):
                await self.event.wait()

        yield park

    def end(self) -> None:
        self.done = True
        self.event.set()


async def test_an_unheard_job_is_not_looked_at_until_its_end_wakes_the_waiter() -> None:
    engine = _Engine()
    async with anyio.create_task_group() as tg:
        with anyio.fail_after(5):
            tg.start_soon(_end_after_a_while, engine)
            assert await wait_finished("a", None, engine.look, engine.watch, unheard=lambda: True) == "finished"
    assert engine.looks == 1


async def _end_after_a_while(engine: _Engine) -> None:
    for _ in range(3):
        await checkpoint()
    assert engine.looks == 0  # the waiter parked without a look
    engine.end()


@pytest.mark.parametrize("timeout", [0.0, None])
async def test_a_heard_job_or_a_zero_timeout_looks_first(timeout: float | None) -> None:
    engine = _Engine()
    engine.done = True
    asked: list[bool] = []

    def unheard() -> bool:
        asked.append(True)
        return False

    assert await wait_finished("a", timeout, engine.look, engine.watch, unheard=unheard) == "finished"
    assert engine.looks == 1
    assert asked == ([] if timeout == 0.0 else [True])  # a zero timeout never skips: it must ask the engine


async def test_an_unheard_job_still_times_out_with_a_look() -> None:
    engine = _Engine()
    with pytest.raises(TimeoutError):
        await wait_finished("a", 0.05, engine.look, engine.watch, unheard=lambda: True)
    assert engine.looks == 1  # the deadline passed: it looked once before giving up


def test_waiters_want_the_jobs_stored_here_or_waited_for() -> None:
    waiters = Waiters()
    assert not waiters.wants_any()
    waiters.expected.add(["stored"])
    with waiters.job("waited"):
        assert waiters.wants_any()
        assert (waiters.wants("stored"), waiters.wants("waited"), waiters.wants("other")) == (True, True, False)
    assert not waiters.wants("waited")
    assert waiters.expected.unheard("stored")
    assert not waiters.wants_any()


class _NoWalk(OrderedDict[str, bool]):
    """A mapping that refuses to be walked: evicting the oldest must not walk the mapping from its front."""

    def __iter__(self) -> Iterator[str]:
        raise AssertionError("walked the mapping to find its oldest key")


def test_evicting_the_oldest_does_not_walk_the_jobs_kept() -> None:
    # Deleting a plain dict's first key again and again left each lookup of the next first key walking the
    # holes before it: every submit past the limit paid for thousands of them.
    expected = Expected()
    expected._ids = _NoWalk()
    expected.add(str(index) for index in range(EXPECTED_LIMIT + 50))
    assert len(expected) == EXPECTED_LIMIT
    assert "49" not in expected
    assert "50" in expected
