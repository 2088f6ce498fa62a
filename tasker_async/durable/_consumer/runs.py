"""Starting claimed jobs on the manager, and hearing of each run's end: no task per job, one done callback each."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ...errors import ManagerNotRunningError, QueueFullError, ResourceCreationError
from .._stores.records import Outcome
from .outcomes import GIVE_BACK, settle
from .steps import split_result

if TYPE_CHECKING:
    from ..._api.manager import AsyncManager
    from ..._core.handle import TaskHandle
    from .book import Fate, Held
    from .wiring import Wiring

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

    Each run's outcome (or its give-back) goes to the outbox; its end sets ``wiring.freed``, which
    wakes the claim loop (a worker came free).

    Args:
        wiring: the parts of the consumer.
        manager: runs the jobs.
    """

    def __init__(self, wiring: Wiring, manager: AsyncManager[Any]) -> None:
        """Wire the runner; it submits nothing until :meth:`start_waiting`."""
        self._wiring = wiring
        self._manager = manager
        self.closed = False  # set on a stop or kill: nothing more starts

    def start_waiting(self) -> None:
        """Submit prefetched jobs, oldest first, while the manager has a free worker for each."""
        book = self._wiring.book
        if not book.waiting or self.closed:
            return
        # Counted once: each job submitted takes one free worker (it waits in the manager's queue for it), so
        # the count goes down by one per job, and a batch costs one count of the workers, not one per job.
        for _ in range(self._wiring.port.free_workers()):
            if not book.waiting or self.closed:
                return
            self._submit(book.waiting.popleft())

    def _submit(self, held: Held) -> None:
        claim, task, call = held.claim, held.task, held.call
        assert task is not None  # only checked jobs wait to start
        assert call is not None
        try:
            handle = self._manager.submit_nowait(
                durable_job, task.fn, call.args, call.kwargs, priority=claim.priority, once=claim.once
            )
        except (QueueFullError, ResourceCreationError):
            # No room, or no resource can be made for now (the creation breaker is open): another
            # consumer may run it, or this one once its manager can again.
            self._wiring.outbox.give_back(claim.hold, started=False)
            return
        except ManagerNotRunningError:
            self._wiring.outbox.give_back(claim.hold, started=False)
            self._wiring.manager_gone()
            return
        self._wiring.book.started(held, handle)
        handle.add_done_callback(functools.partial(self._settle, held))

    def _settle(self, held: Held, handle: TaskHandle[Any]) -> None:
        wiring = self._wiring
        wiring.book.ended()
        settlement = settle(held.claim, handle, held.fate, wiring.store.serializer)
        if held.step is not None and isinstance(settlement, Outcome):
            if held.split and settlement.state == "succeeded":
                settlement = split_result(settlement, handle.result(), wiring.store.serializer)
            settlement = replace(settlement, step=True)
        if settlement == GIVE_BACK:
            wiring.outbox.give_back(held.claim.hold, started=True)
        elif settlement is not None:
            wiring.outbox.record(settlement)
        # The worker that ran it is free now: the next prefetched job starts at once, not
        # after the claim loop's store call in flight returns.
        self.start_waiting()
        wiring.freed.set()

    @staticmethod
    def cancel(held: Held, fate: Fate) -> bool:
        """Cancel ``held``'s run, if it runs, for ``fate``; its done callback settles it accordingly."""
        if held.handle is None or held.handle.done():
            return False
        held.fate = fate
        return held.handle.cancel()
