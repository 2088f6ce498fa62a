"""How a ``RedisStore`` waits for ready jobs: a look at the engine (spared after a short claim), then a message."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

import anyio

from ..drained import Drained
from .watch import Watch

__all__ = ("RECHECK", "ReadyWaits")

# A waiter checks the engine again this often even without a message (a safety net, not a poll loop).
RECHECK = 5.0
# Seconds a wait for ready jobs waits for its look at the engine (which goes on if the wait is cut short).
_LOOK_LIMIT = 1.0


def _retrieved(task: asyncio.Task[Any]) -> None:
    if not task.cancelled():
        task.exception()  # a look whose wait was cut short has nobody to tell of its error


class ReadyWaits:
    """The waits for ready jobs of one store object, and the looks they left to finish (see :meth:`close`).

    Args:
        look: runs the ``ready`` script for the queues: the count of ready jobs, and the seconds until the
            next delayed one is due (empty when none is).
        handed: whether jobs of the queues were handed to a consumer here and wait for its claim (handed.py).
    """

    def __init__(
        self, look: Callable[[Sequence[str]], Coroutine[Any, Any, Any]], handed: Callable[[Sequence[str]], bool]
    ) -> None:
        self._look = look
        self._handed = handed
        # What the store's claims tell the waits that follow them (drained.py).
        self.drained = Drained()
        self._detached: set[asyncio.Task[Any]] = set()

    @staticmethod
    def heard(watch: Watch | None) -> int | None:
        """What a claim sent now records: the count of messages heard, or None if nobody listens."""
        return watch.waiters.heard if watch is not None and watch.listening else None

    async def wait(self, watch: Watch, queues: Sequence[str], timeout: float) -> None:
        """Return once jobs of ``queues`` are ready (at once if some are), or after ``timeout`` seconds at most."""
        key = frozenset(queues)
        with anyio.move_on_after(timeout):
            # Taken and registered with no await between: a message heard after the check wakes the waiter.
            look_at = self.drained.take(queues, watch.waiters.heard) if watch.listening else None
            while True:
                with watch.waiters.ready(key) as waiter:
                    if self._handed(queues):
                        return  # heard before the wait began, which its waiter would have missed
                    if look_at is None:
                        # The look runs in a task of its own: a wait cut short (a consumer's run ended, its outcome
                        # is to go) returns at once and leaves the look to finish, rather than wait for its answer,
                        # or cancel a command in flight, which would cost the connection.
                        with anyio.move_on_after(_LOOK_LIMIT) as look:
                            ready, due_in = await asyncio.shield(self._detached_look(queues))
                        if look.cancelled_caught:
                            return  # the engine is slow or away: the caller's claim finds out
                        if int(ready) > 0:
                            return
                        until = max(0.0, float(due_in)) if due_in else math.inf
                    else:
                        until, look_at = max(0.0, look_at - anyio.current_time()), None
                    # Wake on a message, and also when the earliest delayed job's time comes.
                    with anyio.move_on_after(min(until, RECHECK)):
                        await waiter.event.wait()
                    if waiter.now:
                        return  # a job became ready: the caller's claim takes it, without a look first

    def _detached_look(self, queues: Sequence[str]) -> asyncio.Task[Any]:
        """The look in a task of its own, which :meth:`close` waits for; its error, if any, is its caller's."""
        task = asyncio.get_running_loop().create_task(self._look(queues))
        self._detached.add(task)
        task.add_done_callback(self._detached.discard)
        task.add_done_callback(_retrieved)
        return task

    async def close(self) -> None:
        """Wait for the looks still running (their connections go back to the pool)."""
        if self._detached:
            await asyncio.wait(set(self._detached))
