"""``Operations``: how ``PostgresStore`` runs its operations on the pool, and its part of the protocol for runs."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, TypeVar, TypeVarTuple, Unpack

from ..._model.workflow.records import RunEvent, RunInfo
from ..records import NewRun, RunOutput
from ..shared import EngineStore
from . import workflows
from .schema import Names

if TYPE_CHECKING:
    from .schema import Conn

__all__ = ("Operations",)

T = TypeVar("T")
Ts = TypeVarTuple("Ts")


class Operations(EngineStore):
    """The operations of a store on one schema, each on a connection of the pool; ``PostgresStore`` is one.

    An operation that may tell run events (it starts, resumes or ends a run) gets a list for them, and the
    events are kept for ``take_run_events`` once it returned: its transaction committed.
    """

    _names: Names

    def _connection(self) -> AbstractAsyncContextManager[Conn]:
        raise NotImplementedError

    async def _run(self, fn: Callable[[Conn, Names, Unpack[Ts]], Awaitable[T]], *args: *Ts) -> T:
        async with self._connection() as conn:
            return await fn(conn, self._names, *args)

    async def _telling(self, fn: Callable[[Conn, Names, Unpack[Ts], list[RunEvent]], Awaitable[T]], *args: *Ts) -> T:
        told: list[RunEvent] = []
        async with self._connection() as conn:
            done = await fn(conn, self._names, *args, told)
        self._run_events.add(told)
        return done

    async def start_run(self, run: NewRun) -> str:
        """Store ``run`` and enqueue its roots' jobs in one transaction; a key (or an id) in use returns that run's id.

        Durable on return.
        """
        return await self._telling(workflows.start_run, run)

    async def run_info(self, run_id: str) -> RunInfo | None:
        """The run's snapshot (one consistent view), or None if it is unknown."""
        return await self._run(workflows.run_info, run_id)

    async def _run_look(self, run_id: str) -> RunOutput | None:
        return await self._run(workflows.run_output, run_id)

    async def cancel_run(self, run_id: str) -> bool:
        """Cancel a running run at once; False if it had finished or is unknown."""
        return await self._telling(workflows.cancel_run, run_id)

    async def resume_run(self, run_id: str) -> bool:
        """Run a failed run's failed steps again; False if it is not failed.

        Raises:
            LookupError: the run is unknown.
        """
        return await self._telling(workflows.resume_run, run_id)
