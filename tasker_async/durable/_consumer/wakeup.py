"""``Wakeup``: a flag a synchronous callback sets to cut a loop's wait short, without a task per wait."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVarTuple, Unpack

import anyio

__all__ = ("Wakeup",)

Ts = TypeVarTuple("Ts")


class Wakeup:
    """Set from anywhere on the event loop's thread; the one task waiting through :meth:`during` wakes.

    A ``set()`` that comes while nobody waits is kept until :meth:`clear`, so a wake-up between
    a loop's look and its wait is never lost.
    """

    __slots__ = ("_scope", "pending")

    def __init__(self) -> None:
        """Start unset."""
        self.pending = False
        self._scope: anyio.CancelScope | None = None

    def set(self) -> None:
        """Wake the waiter now, or the next one to wait."""
        self.pending = True
        if self._scope is not None:
            self._scope.cancel()

    def clear(self) -> None:
        """Forget a wake-up already acted on (the loop is about to look again)."""
        self.pending = False

    async def during(self, fn: Callable[[Unpack[Ts]], Awaitable[Any]], *args: *Ts) -> bool:
        """Await ``fn(*args)``, cut short by :meth:`set`; return whether it was cut short (or a wake-up was pending).

        ``fn`` must stand being cancelled (``anyio.sleep``, a store's ``wait_ready``).
        """
        if self.pending:
            return True
        with anyio.CancelScope() as scope:
            self._scope = scope
            try:
                await fn(*args)
            finally:
                self._scope = None
        return self.pending

    async def sleep(self, seconds: float) -> bool:
        """Sleep ``seconds``, cut short by :meth:`set`; return whether it was."""
        return await self.during(anyio.sleep, seconds)

    async def wait_until(self, holds: Callable[[], bool]) -> None:
        """Wait until ``holds()``; whoever may make it hold calls :meth:`set`."""
        while not holds():
            self.clear()
            await self.during(anyio.sleep_forever)
