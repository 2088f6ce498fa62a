"""How the PostgreSQL store's waiters learn of changes: one ``LISTEN`` connection per store object, fanned out.

Enqueues and requeues ``NOTIFY`` the ready channel with the job's queue (the later channel for a delayed
job); outcomes, cancels and take-backs ``NOTIFY`` the done channel with the job's id, and a run's end with
the run's id (its waiters are keyed by id too); a running job asked to be cancelled ``NOTIFY``s the cancel
channel with the id of the consumer holding it. Every waiter of a store object (clients waiting on results,
an idle consumer waiting for work) parks on an event here; the single listener connection wakes the ones a
notification concerns, so a thousand waiting clients hold one connection, not a thousand.

Notifications are not stored: while the listener is down (the server restarted, or is unreachable), waiters
fall back to polling, and when it connects again every waiter looks once more, having perhaps missed one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import asyncpg

from ..waiting import Waiters
from .errors import UNAVAILABLE
from .schema import Names

__all__ = ("Listener",)

# Seconds between two attempts to connect the listener while the server is unreachable.
RECONNECT_EVERY = 1.0


class Listener:
    """The listener connection of one store object and the waiters it serves.

    Args:
        connect: opens a new connection (not one of the pool: it stays in ``LISTEN``).
        names: the store's schema, whose channels it listens on.
    """

    def __init__(self, connect: Callable[[], Awaitable[asyncpg.Connection[Any]]], names: Names) -> None:
        self._connect = connect
        self._names = names
        self._conn: asyncpg.Connection[Any] | None = None
        self._lock = anyio.Lock()
        self._next_try = 0.0
        self._closed = False
        # The events of the store object's waiters, which the notifications set.
        self.waiters = Waiters()

    def __repr__(self) -> str:
        state = "listening" if self.listening else "not listening"
        return f"Listener({state}, {self.waiters!r})"

    @property
    def listening(self) -> bool:
        """Whether notifications reach the waiters now."""
        return self._conn is not None and not self._conn.is_closed()

    async def ensure(self) -> bool:
        """Connect the listener if it is down (at most once per ``RECONNECT_EVERY``); whether it listens."""
        if self.listening or self._closed or anyio.current_time() < self._next_try:
            return self.listening
        async with self._lock:
            if self.listening or self._closed:
                return self.listening
            self._next_try = anyio.current_time() + RECONNECT_EVERY
            try:
                conn = await self._connect()
            except UNAVAILABLE:
                return False
            try:
                await conn.add_listener(self._names.ready, self._on_ready)
                await conn.add_listener(self._names.later, self._on_later)
                await conn.add_listener(self._names.done, self._on_done)
                await conn.add_listener(self._names.cancel, self._on_cancel)
            except UNAVAILABLE:
                conn.terminate()
                return False
            except BaseException:
                conn.terminate()
                raise
            conn.add_termination_listener(self._on_lost)
            self._conn = conn
        # Notifications sent while nobody listened are lost: every waiter looks again.
        self.waiters.wake_all()
        return True

    def _on_ready(self, conn: object, pid: int, channel: str, payload: object) -> None:
        self.waiters.became_ready(str(payload))

    def _on_later(self, conn: object, pid: int, channel: str, payload: object) -> None:
        self.waiters.became_ready(str(payload), now=False)

    def _on_done(self, conn: object, pid: int, channel: str, payload: object) -> None:
        self.waiters.finished(str(payload).split(","))

    def _on_cancel(self, conn: object, pid: int, channel: str, payload: object) -> None:
        self.waiters.cancels.told([str(payload)])

    def _on_lost(self, conn: object) -> None:
        if conn is self._conn:
            self._conn = None
        self.waiters.wake_all()

    async def close(self) -> None:
        """Close the listener connection, even when the caller is cancelled; wake every waiter."""
        self._closed = True
        conn, self._conn = self._conn, None
        if conn is not None:
            with anyio.CancelScope(shield=True):
                with anyio.move_on_after(5.0):
                    await conn.close()
                if not conn.is_closed():
                    conn.terminate()
        self.waiters.wake_all()
