"""Starting claimed jobs on the manager, and hearing of each run's end: no task per job, one done callback each."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from ...errors import ManagerNotRunningError, QueueFullError
from .outcomes import GIVE_BACK, settle

if TYPE_CHECKING:
    from ..._api.manager import AsyncManager
    from ..._api.port import EnginePort
    from ..._core.handle import TaskHandle
    from .._model.serializer import Serializer
    from .book import Book, Fate, Held
    from .outbox import Outbox
    from .wakeup import Wakeup

__all__ = ("Runner", "durable_job")


async def durable_job(
    resource: Any, fn: Callable[..., Awaitable[Any]], args: tuple[Any, ...], kwargs: Mapping[str, Any]
) -> Any:
    """Run one stored job's task function on a worker's resource.

    Every job goes through this one function, so the manager checks it once, not once per
    task function (it remembers the last function it found fine).
    """
    return await fn(resource, *args, **kwargs)


class Runner:
    """Submits the book's prefetched jobs while the manager has free workers; settles each run that ends.

    Args:
        manager: runs the jobs.
        port: tells how many workers are free.
        book: the jobs held.
        outbox: takes each run's outcome, or its give-back.
        serializer: the store's, for results.
        ended: wakes the claim loop (a worker came free).
        manager_gone: called when the manager refuses a job because it stopped.
    """

    def __init__(
        self,
        manager: AsyncManager[Any],
        port: EnginePort,
        book: Book,
        outbox: Outbox,
        serializer: Serializer,
        *,
        ended: Wakeup,
        manager_gone: Callable[[], None],
    ) -> None:
        """Wire the runner; it submits nothing until :meth:`start_waiting`."""
        self._manager = manager
        self._port = port
        self._book = book
        self._outbox = outbox
        self._serializer = serializer
        self._ended = ended
        self._manager_gone = manager_gone
        self.closed = False  # set on a stop or kill: nothing more starts

    def start_waiting(self) -> None:
        """Submit prefetched jobs, oldest first, while the manager has a free worker for each."""
        book = self._book
        port = self._port
        while book.waiting and not self.closed and port.free_workers() > 0:
            self._submit(book.waiting.popleft())

    def _submit(self, held: Held) -> None:
        claim, task, call = held.claim, held.task, held.call
        assert task is not None  # only checked jobs wait to start
        assert call is not None
        try:
            handle = self._manager.submit_nowait(
                durable_job, task.fn, call.args, call.kwargs, priority=claim.priority, once=claim.once
            )
        except QueueFullError:
            self._outbox.give_back(claim.hold, started=False)
            return
        except ManagerNotRunningError:
            self._outbox.give_back(claim.hold, started=False)
            self._manager_gone()
            return
        self._book.started(held, handle)
        handle.add_done_callback(functools.partial(self._settle, held))

    def _settle(self, held: Held, handle: TaskHandle[Any]) -> None:
        self._book.ended()
        settlement = settle(held.claim, handle, held.fate, self._serializer)
        if settlement == GIVE_BACK:
            self._outbox.give_back(held.claim.hold, started=True)
        elif settlement is not None:
            self._outbox.record(settlement)
        # The worker that ran it is free now: the next prefetched job starts at once, not
        # after the claim loop's store call in flight returns.
        self.start_waiting()
        self._ended.set()

    @staticmethod
    def cancel(held: Held, fate: Fate) -> bool:
        """Cancel ``held``'s run, if it runs, for ``fate``; its done callback settles it accordingly."""
        if held.handle is None or held.handle.done():
            return False
        held.fate = fate
        return held.handle.cancel()
