"""How the SQLite store's waiters learn of changes: one poll of the file at a time serves all of them.

SQLite cannot notify another process, so someone must look. Every parked waiter would poll on its own;
instead one of them, the leader, polls for all: every ``POLL_INTERVAL`` it reads ``PRAGMA data_version``
(one cheap statement that changes when another connection commits) and only when that moved, or this
connection committed, reads the state of every awaited job in one query. When the leader leaves (its job
finished, its deadline passed, it was cancelled), it hands the role to another parked waiter.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

import anyio

__all__ = ("POLL_INTERVAL", "Watch")

# The spec lets SQLite poll at 50 ms at most.
POLL_INTERVAL = 0.05


class _Waiter:
    """One parked waiter: on a job (``job_id``), or on any change (``job_id`` None)."""

    __slots__ = ("done", "event", "job_id")

    def __init__(self, job_id: str | None) -> None:
        self.job_id = job_id
        self.done = False
        # Set when the waiter is done, or made the leader.
        self.event = anyio.Event()

    def finish(self) -> None:
        self.done = True
        self.event.set()


class Watch:
    """The waiters of one connection and the poll that serves them.

    Args:
        probe: reads ``PRAGMA data_version``.
        settled: of the given job ids, those finished or gone.
        version: the ``data_version`` the connection started with.
    """

    def __init__(
        self,
        *,
        probe: Callable[[], Awaitable[int]],
        settled: Callable[[Sequence[str]], Awaitable[set[str]]],
        version: int,
    ) -> None:
        self._probe = probe
        self._settled = settled
        self._version = version
        # Counts the changes seen: a waiter that read the data at one generation has missed nothing until it moves.
        self.generation = 0
        # A change was seen that the awaited jobs have not been looked at for.
        self._dirty = False
        self._waiters: set[_Waiter] = set()
        self._leader: _Waiter | None = None
        self._kick = anyio.Event()
        self._next_poll = 0.0

    def __repr__(self) -> str:
        return f"Watch(waiters={len(self._waiters)}, generation={self.generation})"

    def touched(self, *, finishing: bool = True) -> None:
        """This connection committed a change (``data_version`` shows only the commits of other connections).

        Args:
            finishing: whether the change may have finished or deleted jobs (a claim or an enqueue does not),
                so that the awaited jobs must be looked at again.
        """
        self.generation += 1
        self._dirty = self._dirty or finishing
        for waiter in [waiter for waiter in self._waiters if waiter.job_id is None]:
            waiter.finish()
        self._kick.set()

    async def changed(self, seen: int, deadline: float) -> None:
        """Return once a change after generation ``seen`` is known, or at ``deadline`` (``anyio.current_time``)."""
        if self.generation == seen:
            await self._park(_Waiter(None), deadline)

    async def settled(self, job_id: str, seen: int, deadline: float) -> None:
        """Return once ``job_id`` may have finished or gone since generation ``seen``, or at ``deadline``."""
        if self.generation == seen:
            await self._park(_Waiter(job_id), deadline)

    async def _park(self, me: _Waiter, deadline: float) -> None:
        self._waiters.add(me)
        try:
            while not me.done and anyio.current_time() < deadline:
                if self._leader is None:
                    self._leader = me
                    try:
                        await self._lead(me, deadline)
                    finally:
                        self._leader = None
                    continue
                with anyio.CancelScope(deadline=deadline):
                    await me.event.wait()
                if not me.done:
                    me.event = anyio.Event()  # woken to lead: loop round and take the role
        finally:
            self._waiters.discard(me)
            if self._leader is None:
                self._hand_over()

    def _hand_over(self) -> None:
        """Wake a parked waiter to lead (it may have been woken already: waking twice is harmless)."""
        for waiter in self._waiters:
            if not waiter.done:
                waiter.event.set()
                return

    async def _lead(self, me: _Waiter, deadline: float) -> None:
        while not me.done and anyio.current_time() < deadline:
            if self._dirty or anyio.current_time() >= self._next_poll:
                await self._check()
                continue
            if self._kick.is_set():
                self._kick = anyio.Event()
            with anyio.CancelScope(deadline=min(deadline, self._next_poll)):
                await self._kick.wait()

    async def _check(self) -> None:
        """Poll the file; on a change, tell the waiters on any change, and look at every awaited job."""
        self._next_poll = anyio.current_time() + POLL_INTERVAL
        version = await self._probe()
        if version != self._version:
            self._version = version
            self.touched()
        if self._dirty:
            await self._look()

    async def _look(self) -> None:
        """Read the state of every awaited job in one query; finish the waiters of those finished or gone."""
        self._dirty = False
        awaited = sorted({waiter.job_id for waiter in self._waiters if waiter.job_id is not None})
        if not awaited:
            return
        try:
            settled = await self._settled(awaited)
        except BaseException:
            self._dirty = True  # the look did not happen: the next check makes it
            raise
        for waiter in [waiter for waiter in self._waiters if waiter.job_id in settled]:
            waiter.finish()
