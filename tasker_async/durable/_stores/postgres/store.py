"""``PostgresStore``: the store protocol on a PostgreSQL server that any number of machines share."""

from __future__ import annotations

import contextlib
import functools
import math
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Self

import anyio
import asyncpg

from ....errors import ConfigError
from ..._model.records import ConsumerInfo
from ..._model.serializer import JSONSerializer, Serializer
from ..group import GroupCommit
from ..records import Claim, Lease, NewJob, Outcome, Renewal
from ..waiting import Park, parked_on
from . import queries, reads, takeback
from .errors import UNAVAILABLE, describe, unavailable
from .listen import Listener
from .operations import Operations
from .schema import Names, SchemaError, ensure_schema

if TYPE_CHECKING:
    from .schema import Conn

__all__ = ("PostgresStore",)

# Seconds a waiter sleeps at most between two looks, should a notification go astray: the safety net.
SAFETY_POLL = 1.0
# Seconds between looks while the listener is down (the server restarts, or is unreachable).
OUTAGE_POLL = 0.25


async def _keep_session(conn: asyncpg.Connection[Any]) -> None:
    """What a connection needs when it goes back to the pool: no transaction left open, nothing else.

    The store's statements leave no session state behind (no ``LISTEN``, no cursor, no setting, and only
    transaction-scoped locks), so the driver's default reset, a round trip per operation, is not needed.
    """
    if conn.is_in_transaction():
        await conn.execute("ROLLBACK")


# Seconds a wait's look at the engine may take, shielded from the wait being cut short.
_LOOK_LIMIT = 1.0


class PostgresStore(Operations):
    r"""A store on a PostgreSQL server (13 or later): for many machines, transactional.

    Each store object keeps a small pool of connections for its operations (each one statement, or one short
    transaction) and one more connection that ``LISTEN``\\ s: enqueues wake idle consumers and outcomes wake the
    clients waiting on them at once, however many wait, with a slow poll as a safety net. Claims take rows with
    ``FOR UPDATE SKIP LOCKED``, so consumers never queue behind one another. The tables are created on first
    use (under an advisory lock) in their own schema, so several applications can share a database. A workflow
    run's transitions commit with the outcomes of its steps' jobs, in one transaction; a plain job pays nothing
    for them.

    Args:
        dsn: a ``postgresql://user:password@host:port/database`` URL (or a libpq key-value string).
        schema: the schema that holds the store's tables (a plain identifier).
        serializer: how clients encode arguments and results (JSON by default).
        pool_size: the most connections the object's operations use at once (the listener comes on top).
        connect_timeout: seconds a connection attempt may take before the store counts the server unreachable.

    Raises:
        ConfigError: an option is out of range.
    """

    def __init__(
        self,
        dsn: str,
        *,
        schema: str = "tasker_async",
        serializer: Serializer | None = None,
        pool_size: int = 4,
        connect_timeout: float = 5.0,
    ) -> None:
        if not isinstance(dsn, str) or not dsn:
            raise ConfigError(f"dsn must be a non-empty str, got {dsn!r}")
        try:
            self._names = Names(schema)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        if isinstance(pool_size, bool) or not isinstance(pool_size, int) or pool_size < 1:
            raise ConfigError(f"pool_size must be an int >= 1, got {pool_size!r}")
        if isinstance(connect_timeout, bool) or not isinstance(connect_timeout, int | float) or not connect_timeout > 0:
            raise ConfigError(f"connect_timeout must be a number of seconds > 0, got {connect_timeout!r}")
        if math.isinf(connect_timeout):
            raise ConfigError("connect_timeout must be finite: an unreachable server must be noticed")
        self.serializer: Serializer = serializer if serializer is not None else JSONSerializer()
        self.dsn = dsn
        self.schema = schema
        self.pool_size = pool_size
        self.connect_timeout = float(connect_timeout)
        self._where = describe(dsn)
        self._pool: asyncpg.Pool[Any] | None = None
        self._listener: Listener | None = None
        self._entered = False
        self._reads = reads.Reads(self._connection, self._names)
        # Concurrent submits share one statement, and so one commit and one sync of the log.
        # Half the pool at most, so a worker's own calls always find a connection.
        self._enqueues = GroupCommit(self._enqueue_group, in_flight=max(1, pool_size // 2))
        self._looks = GroupCommit(self._look_group, in_flight=max(1, pool_size // 2))

    def __repr__(self) -> str:
        state = "open" if self._pool is not None else "closed"
        return f"PostgresStore({self._where!r}, schema={self.schema!r}, {state}, {self._listener!r})"

    async def _connect(self) -> asyncpg.Connection[Any]:
        return await asyncpg.connect(self.dsn, timeout=self.connect_timeout)

    async def __aenter__(self) -> Self:
        """Connect, and create the schema and its tables on first use.

        Raises:
            StoreUnavailableError: the server cannot be reached, or its schema has another version.
        """
        if self._entered:
            raise RuntimeError(f"{self!r} is open already: enter a store once")
        self._entered = True
        try:
            self._pool = await asyncpg.create_pool(
                self.dsn, min_size=0, max_size=self.pool_size, timeout=self.connect_timeout, reset=_keep_session
            )
            async with self._connection() as conn:
                await ensure_schema(conn, self._names)
        except SchemaError as exc:
            await self._close()
            raise unavailable(self._where, exc) from exc
        except BaseException:
            await self._close()
            raise
        self._listener = Listener(self._connect, self._names)
        return self

    async def _close(self) -> None:
        listener, self._listener = self._listener, None
        pool, self._pool = self._pool, None
        with anyio.CancelScope(shield=True):
            if listener is not None:
                await listener.close()
            if pool is not None:
                with anyio.move_on_after(5.0):
                    await pool.close()
                pool.terminate()

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[Conn]:
        """A connection of the pool; the server's being unreachable becomes ``StoreUnavailableError``."""
        pool = self._pool
        if pool is None:
            raise RuntimeError(f"{self!r} is not open: use it as `async with PostgresStore(dsn) as store:`")
        try:
            conn = await pool.acquire()
        except UNAVAILABLE as exc:
            raise unavailable(self._where, exc) from exc
        try:
            yield conn
        except UNAVAILABLE as exc:
            # Its session is gone or in an unknown state: closed here, so the pool opens a fresh one next time
            # (resetting it would fail on the broken socket and hide this error).
            with contextlib.suppress(asyncpg.InterfaceError):  # the pool may have let go of it already
                conn.terminate()
            raise unavailable(self._where, exc) from exc
        finally:
            # A connection that cannot be reset is closed by the pool itself: what the caller did stands.
            with anyio.CancelScope(shield=True), contextlib.suppress(*UNAVAILABLE):
                await pool.release(conn)

    def _listening(self) -> Listener:
        if self._listener is None:
            raise RuntimeError(f"{self!r} is not open: use it as `async with PostgresStore(dsn) as store:`")
        return self._listener

    # -- the protocol

    async def enqueue(self, job: NewJob) -> str:
        """Store ``job`` and return its id; a key (or an id) already in use returns that job's id, storing nothing.

        Durable on return: the commit is synced by the server. Concurrent calls share one statement.
        """
        return await self._enqueues(job)

    async def _enqueue_group(self, jobs: list[NewJob]) -> list[str]:
        return await self._run(queries.enqueue, jobs)

    async def claim(self, consumer: str, queues: Sequence[str], limit: int, *, waits: bool = False) -> list[Claim]:
        """Take up to ``limit`` ready jobs of ``queues`` for ``consumer``, priority lane first, in one statement."""
        return await self._run(queries.claim, consumer, queues, limit, time.time()) if limit > 0 else []

    async def renew(self, consumer: ConsumerInfo, leases: Sequence[Lease]) -> Renewal:
        """Record the heartbeat (at this machine's clock) and extend the leases still held."""
        return await self._run(queries.renew, consumer, leases)

    async def complete(self, outcomes: Sequence[Outcome]) -> list[bool]:
        """Record each outcome whose lease is still held; True where recorded."""
        return await self._telling(queries.complete, outcomes, time.time())

    async def complete_and_claim(
        self, outcomes: Sequence[Outcome], consumer: str, queues: Sequence[str], limit: int, *, waits: bool = False
    ) -> tuple[list[bool], list[Claim]]:
        """``complete`` then ``claim`` in one transaction: one commit."""
        return await self._telling(queries.complete_and_claim, outcomes, consumer, queues, limit)

    async def release(self, leases: Sequence[Lease], *, started: bool) -> None:
        """Give held jobs back: unstarted ones keep their place and their delivery is taken back."""
        if leases:
            await self._telling(takeback.release, leases, started)

    async def cancel(self, job_id: str) -> bool:
        """Cancel a queued or delayed job at once; ask the holder of a running one. False if finished or unknown."""
        return await self._telling(takeback.cancel, job_id)

    async def reclaim(self) -> int:
        """Take back the running jobs whose lease has expired; return how many."""
        return await self._telling(takeback.reclaim)

    async def requeue_dead(self, job_id: str) -> bool:
        """Give a dead job another round: deliveries from zero, ready now. False if not dead, or a run step's."""
        return await self._run(takeback.requeue_dead, job_id)

    async def purge(self) -> int:
        """Delete the jobs finished longer than their ``result_ttl`` ago (never dead ones), and such runs."""
        return await self._run(takeback.purge)

    @asynccontextmanager
    async def _parked(self, job_id: str) -> AsyncIterator[Park]:
        listener = self._listening()
        listening = await listener.ensure()
        # Registered before the look, so a notification sent in between is not missed.
        with listener.waiters.job(job_id) as event:
            yield functools.partial(parked_on, event, poll=SAFETY_POLL if listening else OUTAGE_POLL)

    async def wait_ready(self, queues: Sequence[str], timeout: float) -> None:
        """Return once jobs of ``queues`` are ready (at once if some are), or after ``timeout`` seconds at most."""
        listener = self._listening()
        deadline = anyio.current_time() + timeout
        names = frozenset(queues)
        while True:
            listening = await listener.ensure()
            with listener.waiters.ready(names) as waiter:
                # Shielded: a wait cut short (a consumer's run ended) lets the look finish rather than
                # cancel a query in flight, which costs a cancel request on a connection of its own.
                with anyio.CancelScope(shield=True, deadline=anyio.current_time() + _LOOK_LIMIT) as look:
                    earliest = await self._reads.earliest_ready(queues)
                if look.cancelled_caught:
                    return  # the engine is slow or away: the caller's claim finds out
                wall, clock = time.time(), anyio.current_time()
                if (earliest is not None and earliest <= wall) or clock >= deadline:
                    return
                # Wake on an enqueue, and also when the earliest delayed job's time comes.
                until = deadline if earliest is None else min(deadline, clock + (earliest - wall))
                poll = SAFETY_POLL if listening else OUTAGE_POLL
                with anyio.CancelScope(deadline=min(until, clock + poll)):
                    await waiter.event.wait()
                if waiter.now:
                    return  # a job became ready: the caller's claim takes it, without a look first

    async def wait_cancel_request(self, consumer: str, timeout: float) -> bool:
        """Wait ``timeout`` seconds at most for a cancel request to one of ``consumer``'s running jobs (``NOTIFY``)."""
        listener = self._listening()
        if not await listener.ensure():
            await anyio.sleep(timeout)  # no notifications for now: the consumer's lease tick brings the request
            return False
        return await listener.waiters.cancels.wait(consumer, timeout)

    async def leave(self, consumer: str) -> None:
        """Forget ``consumer``'s heartbeat."""
        self._listening().waiters.cancels.forget(consumer)
        await self._run(takeback.leave, consumer)
