"""The two task queues, priority and main, behind one wake-up path for workers.

Two FIFO lanes with the semantics of ``asyncio.Queue`` (a bounded lane makes
``put`` wait and ``put_nowait`` fail), plus what ``asyncio.Queue`` cannot do
and the manager needs: a worker parks once and wakes for either lane, takes
the priority lane first, and a task whose caller gave up is removed from the
middle of its lane so it never runs and frees its slot at once.

Removal from the middle is O(1): the item stays where it lies, marked dead by
its owner (``alive(item)`` turns false), and is counted out of the lane's
length; a worker that pops a dead item drops it (``drop_dead``), and a lane
more than half dead is compacted. Cancelling many queued tasks is then linear,
not quadratic.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ("JobQueue",)

T = TypeVar("T")


def _wake_one(waiters: deque[asyncio.Future[None]]) -> None:
    while waiters:
        waiter = waiters.popleft()
        if not waiter.done():
            waiter.set_result(None)
            return


def _wake_newest(waiters: deque[asyncio.Future[None]]) -> bool:
    while waiters:
        waiter = waiters.pop()
        if not waiter.done():
            waiter.set_result(None)
            return True
    return False


def _wake_all(waiters: deque[asyncio.Future[None]]) -> None:
    while waiters:
        waiter = waiters.popleft()
        if not waiter.done():
            waiter.set_result(None)


async def _park(
    waiters: deque[asyncio.Future[None]], pass_on: Callable[[], bool], wake_another: Callable[[], object]
) -> None:
    """Wait on a fresh future in ``waiters`` until someone wakes it.

    A waiter that is woken and cancelled before it could act passes the
    wake-up on when ``pass_on()`` says there is still something to act on, so
    a cancelled worker or putter never swallows a wake-up meant for another.
    """
    waiter = asyncio.get_running_loop().create_future()
    waiters.append(waiter)
    try:
        await waiter
    except BaseException:
        waiter.cancel()
        try:
            waiters.remove(waiter)
        except ValueError:
            if pass_on():
                wake_another()
        raise


class JobQueue(Generic[T]):
    """A priority lane and a main lane, each FIFO, each bounded by ``maxsize``."""

    __slots__ = ("_alive", "_dead", "_maxsize", "_putters", "main", "priority", "spare_takers", "takers")

    def __init__(self, maxsize: int, alive: Callable[[T], bool] = lambda item: True) -> None:
        """Make two empty lanes; ``maxsize`` 0 leaves them unbounded; ``alive`` tells removed items apart."""
        self.priority: deque[T] = deque()
        self.main: deque[T] = deque()
        self._maxsize = maxsize
        self._alive = alive
        self._dead = [0, 0]  # removed items still lying in the main lane, the priority lane
        # Parked workers, woken newest first and base workers before burst ("spare")
        # ones: under light load the same few base workers stay busy, and the rest
        # stay idle long enough for burst workers to retire.
        self.takers: deque[asyncio.Future[None]] = deque()
        self.spare_takers: deque[asyncio.Future[None]] = deque()
        self._putters: tuple[deque[asyncio.Future[None]], deque[asyncio.Future[None]]] = (
            deque(),
            deque(),
        )

    def __len__(self) -> int:
        """Tasks waiting in both lanes."""
        return len(self.priority) + len(self.main) - self._dead[0] - self._dead[1]

    def lane_length(self, priority: bool) -> int:
        """Tasks waiting in one lane."""
        return len(self.priority if priority else self.main) - self._dead[priority]

    def full(self, priority: bool) -> bool:
        """Whether the lane has reached ``maxsize``."""
        if not self._maxsize:
            return False
        return self.lane_length(priority) >= self._maxsize

    def put_nowait(self, item: T, priority: bool) -> None:
        """Append ``item`` to its lane, ignoring the bound (callers check ``full``).

        ``TaskLedger.accept`` does the same inline: it is on every submission's path.
        """
        (self.priority if priority else self.main).append(item)
        if self.takers or self.spare_takers:
            self.wake_taker()

    def wake_taker(self) -> None:
        """Wake one parked worker: the newest base one, else the newest burst one."""
        if not _wake_newest(self.takers):
            _wake_newest(self.spare_takers)

    async def wait_for_room(self, priority: bool) -> None:
        """Wait until the lane may have room, or until ``wake_all``; re-check after."""
        putters = self._putters[priority]
        await _park(putters, lambda: not self.full(priority), lambda: _wake_one(putters))

    def freed(self, priority: bool) -> None:
        """Wake a submitter waiting for room in a bounded lane, after a worker took a task from it.

        Workers take tasks straight from ``priority`` and ``main`` (the hot
        path), priority first, and call this when the lanes are bounded.
        """
        putters = self._putters[priority]
        if putters:
            _wake_one(putters)

    def park(self, spare: bool) -> asyncio.Future[None]:
        """Register a worker about to wait for a task: it awaits the future returned.

        The future is set when a task may be there, or on ``wake_all``.
        ``spare`` (burst) workers are woken last. The worker awaits the future
        itself, not a coroutine of this queue: a parked worker is woken once
        per task under light load, and every coroutine level costs each wake-up.
        If the wait ends any other way, it must call ``unpark``.
        """
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        (self.spare_takers if spare else self.takers).append(waiter)
        return waiter

    def unpark(self, waiter: asyncio.Future[None], spare: bool) -> None:
        """Withdraw a worker whose wait on ``waiter`` ended by an exception (a cancellation).

        If it had been woken already, the wake-up goes to another worker, so
        a cancelled worker never swallows one meant for the tasks waiting.
        """
        waiter.cancel()
        try:
            (self.spare_takers if spare else self.takers).remove(waiter)
        except ValueError:
            self.pass_wake()

    def pass_wake(self) -> None:
        """Wake another parked worker if tasks wait: a leaving worker's wake-up must not be lost."""
        if len(self):
            self.wake_taker()

    def remove(self, priority: bool) -> None:
        """Count out an item of the ``priority`` lane that its owner has just marked dead.

        The caller knows the item lies in that lane; it stays there until a
        worker pops and drops it, or the lane is compacted.
        """
        dead = self._dead[priority] = self._dead[priority] + 1
        lane = self.priority if priority else self.main
        if dead > 64 and dead * 2 > len(lane):
            alive = self._alive
            kept = [item for item in lane if alive(item)]
            lane.clear()
            lane.extend(kept)
            self._dead[priority] = 0
        if self._maxsize:
            _wake_one(self._putters[priority])

    def drop_dead(self, priority: bool) -> None:
        """A worker popped a dead item off the ``priority`` lane and dropped it."""
        self._dead[priority] -= 1

    def drain(self) -> list[T]:
        """Empty both lanes, returning the live items they held, priority first."""
        alive = self._alive
        items = [item for item in (*self.priority, *self.main) if alive(item)]
        self.priority.clear()
        self.main.clear()
        self._dead = [0, 0]
        return items

    def wake_putters(self) -> None:
        """Wake every submitter waiting for room so each re-checks whether tasks are accepted."""
        _wake_all(self._putters[True])
        _wake_all(self._putters[False])

    def wake_all(self) -> None:
        """Wake every parked worker and putter so each re-checks the manager's state."""
        _wake_all(self.takers)
        _wake_all(self.spare_takers)
        _wake_all(self._putters[True])
        _wake_all(self._putters[False])
