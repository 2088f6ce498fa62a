"""Group commit: concurrent calls of one operation share one transaction, and so one sync of the disk.

With every commit synced, a transaction costs a disk flush (milliseconds); submitters that call at the same
time would wait for one flush each. Here the first caller of a group waits for the previous group's
transaction, while later callers join its group; then one transaction stores the whole group, and every
caller returns once it is committed, so each is still durable on return.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

import anyio

__all__ = ("GroupCommit",)

T = TypeVar("T")
R = TypeVar("R")


class _Group(Generic[T, R]):
    __slots__ = ("done", "error", "items", "results")

    def __init__(self) -> None:
        self.items: list[T] = []
        self.results: Sequence[R] = ()
        self.error: BaseException | None = None
        self.done = anyio.Event()


class GroupCommit(Generic[T, R]):
    """Runs ``commit(items) -> results`` (one result per item, in order) for groups of concurrent callers.

    Args:
        commit: stores a group in one transaction.
        in_flight: groups committed at once. One suits an engine with one writer (SQLite); an engine
            that takes several connections at once gets its groups started sooner with more, so a
            caller waits less behind a group already on its way (at the cost of smaller groups).
    """

    def __init__(self, commit: Callable[[list[T]], Awaitable[Sequence[R]]], *, in_flight: int = 1) -> None:
        self._commit = commit
        self._open: _Group[T, R] | None = None
        self._slots = anyio.Semaphore(in_flight)

    async def __call__(self, item: T) -> R:
        """Store ``item`` with the group it joins; return its result once the group is committed."""
        group = self._open
        if group is None:
            group = self._open = _Group()
        index = len(group.items)
        group.items.append(item)
        if index == 0:
            await self._lead(group)
        else:
            await group.done.wait()
        if group.error is not None:
            raise group.error
        return group.results[index]

    async def _lead(self, group: _Group[T, R]) -> None:
        # Shielded: the others of the group wait on this caller, and the transaction runs in a thread that
        # cannot be interrupted anyway; a cancellation reaches the caller once the group is committed.
        with anyio.CancelScope(shield=True):
            try:
                async with self._slots:
                    if self._open is group:
                        self._open = None  # later callers start the next group
                    group.results = await self._commit(group.items)
            except BaseException as exc:
                group.error = exc
                if not isinstance(exc, Exception):
                    raise
            finally:
                group.done.set()
