"""``Drained``: a claim that came up short spares the look of the wait for ready jobs that follows it.

A claim that took fewer jobs than it could took every ready job of its queues: none was left when it ran.
After it, a job becomes ready in one of two ways: a script publishes a message (a job stored, given back,
retried, requeued), or a delayed job's time comes. So when the claim's reply also tells when the earliest
delayed job is due, and no message about ready jobs was heard between sending the claim and starting the
wait, the wait knows what a look at the engine would tell it: nothing is ready, and when to look again. A
message published later is heard by the waiter, registered before the check. The consumer that runs out
of work then waits without a round trip (and, on Redis, without a script run by the server).

When a message was heard meanwhile, the wait looks as it always did (the look runs on its own, so a run
ending still cuts the wait short at once; returning at once instead would send a claim that the run's
outcome then waits behind). The count of messages heard (``Waiters.heard``) also counts every
resubscription, and a listener that is away stores no mark, so a message possibly lost means a look.
"""

from __future__ import annotations

from collections.abc import Sequence

import anyio

__all__ = ("Drained",)


class Drained:
    """The queues whose last claim here came up short, with what the wait that follows may skip."""

    __slots__ = ("_last", "_marks")

    def __init__(self) -> None:
        """Start with no marks: every wait looks first."""
        # queues -> (the count of messages heard when the claim was sent, when the next delayed job is due)
        self._marks: dict[frozenset[str], tuple[int, float]] = {}
        # The mark each wait took last: a claim answered here, with no look at the engine, leaves it (again).
        self._last: dict[frozenset[str], tuple[int, float]] = {}

    def claimed(self, queues: Sequence[str], heard: int | None, due_in: float | None) -> None:
        """A claim of ``queues`` returned: ``due_in`` is None unless it came up short (``math.inf``: none is due).

        ``heard``: the count of messages heard when the claim was sent, or None if nobody was listening.
        """
        key = frozenset(queues)
        self._last.pop(key, None)
        if heard is None or due_in is None:
            self._marks.pop(key, None)
        else:
            self._marks[key] = (heard, anyio.current_time() + due_in)

    def take(self, queues: Sequence[str], heard: int) -> float | None:
        """When the wait for ``queues`` should look (the next delayed job's time), or None: look now.

        ``heard``: the count of messages heard now. A mark serves one wait.
        """
        key = frozenset(queues)
        mark = self._marks.pop(key, None)
        if mark is None or mark[0] != heard:
            self._last.pop(key, None)
            return None
        self._last[key] = mark
        return mark[1]

    def again(self, queues: Sequence[str]) -> None:
        """A claim of ``queues`` was answered without the engine: the mark the last wait took serves the next.

        Still true if no message about ready jobs was heard since (``take`` compares): the jobs that claim
        returned were claimed for it in the engine, and none became ready there.
        """
        key = frozenset(queues)
        mark = self._last.get(key)
        if mark is not None:
            self._marks[key] = mark
