"""``Consumer``: feeds an ``AsyncManager`` from a store, and its lifecycle (start, stop, kill).

Its three loops (claims, lease ticks, the outbox) live in an anyio task group held by one
*host* task, so a consumer entered in one place can be stopped from another (a signal
handler, a fixture), and a shutdown always runs to completion in the host: a caller of
``stop()`` or ``kill()`` that is cancelled only stops waiting for it.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import time
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, Literal, Self

import anyio

from ..._api.manager import AsyncManager
from ..._api.port import engine_port
from ...errors import ConfigError, ManagerNotRunningError
from .._model.records import ConsumerInfo, QueueStats
from .._model.registry import Registry
from .._stores.protocol import Store
from .backoff import log
from .book import Book
from .claims import Claimer
from .leases import Leaser
from .outbox import Outbox
from .runs import Runner
from .shutdown import drain, leave, what_broke
from .stats import ConsumerHealth, ConsumerStats
from .wakeup import Wakeup
from .wiring import Wiring

__all__ = ("Consumer",)

State = Literal["created", "running", "stopping", "killing", "stopped"]


def _checked_queues(queues: object) -> tuple[str, ...]:
    if isinstance(queues, str) or not isinstance(queues, Sequence) or not queues:
        raise ConfigError(f"queues must be a non-empty sequence of queue names, e.g. ['default'], got {queues!r}")
    for queue in queues:
        if not isinstance(queue, str) or not queue:
            raise ConfigError(f"queues must hold non-empty strings, got {queue!r} in {queues!r}")
    return tuple(dict.fromkeys(queues))


def _checked_prefetch(prefetch: object) -> int:
    if isinstance(prefetch, bool) or not isinstance(prefetch, int) or prefetch < 0:
        raise ConfigError(f"prefetch must be a whole number >= 0, got {prefetch!r}")
    return prefetch


class Consumer:
    """Takes jobs of ``queues`` from ``store`` and runs them on ``manager``'s workers; records what they did.

    Use it as ``async with Consumer(store, registry, manager) as consumer:`` inside the
    manager's block: entering starts it; leaving calls :meth:`stop` (or :meth:`kill` when
    the block ends by an exception). It holds at most the manager's free workers plus
    ``prefetch`` jobs it has not started, renews the leases of what it runs, heartbeats into
    the store, and stops by itself when the manager stops. Single-use.

    While the store is unavailable (``StoreUnavailableError``) it keeps its running jobs and
    tries again with a capped, jittered backoff; any other error of the store stops it, its
    jobs given back, and :meth:`serve_forever` (or leaving the block) raises that error.

    Args:
        store: where jobs are stored (entered already).
        registry: the tasks this consumer runs, by name.
        manager: runs them (started already).
        queues: the queues to take jobs from.
        prefetch: jobs to hold beyond the free workers, so a worker that comes free starts
            the next one without a round trip to the store.

    Raises:
        ConfigError: ``queues`` is empty or holds an empty name; ``prefetch`` is negative.
        TypeError: ``store``, ``registry`` or ``manager`` is not one.
    """

    def __init__(
        self,
        store: Store,
        registry: Registry,
        manager: AsyncManager[Any],
        *,
        queues: Sequence[str] = ("default",),
        prefetch: int = 0,
    ) -> None:
        """Prepare a consumer; nothing runs until it is entered."""
        if not isinstance(store, Store):
            raise TypeError(f"Consumer needs a store (MemoryStore, SQLiteStore, open_store(url)), got {store!r}")
        if not isinstance(registry, Registry):
            raise TypeError(f"Consumer needs a tasker_async.durable.Registry, got {registry!r}")
        if not isinstance(manager, AsyncManager):
            raise TypeError(f"Consumer needs a tasker_async.AsyncManager, got {manager!r}")
        self.queues = _checked_queues(queues)
        self.prefetch = _checked_prefetch(prefetch)
        self.id = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self._port = port = engine_port(manager)
        self._state: State = "created"
        self._started_at = 0.0
        self._host: asyncio.Task[None] | None = None
        self._requested = anyio.Event()  # stop() or kill() asked
        self._finished = anyio.Event()  # the host has left the store
        self._failure: BaseException | None = None
        self._book = book = Book(port)
        self._outbox = outbox = Outbox(store, book, self.id)
        self._wiring = wiring = Wiring(
            consumer=self.id,
            store=store,
            registry=registry,
            port=port,
            book=book,
            outbox=outbox,
            queues=self.queues,
            freed=Wakeup(),
            manager_gone=self._manager_gone,
        )
        self._runner = runner = Runner(wiring, manager)
        self._leaser = leaser = Leaser(wiring, runner, heartbeat=self._heartbeat)
        self._claimer = Claimer(wiring, runner, leaser, prefetch=self.prefetch)

    # -- lifecycle ---------------------------------------------------------------

    async def __aenter__(self) -> Self:
        """Start: heartbeat once, then claim, renew and record in the background.

        Raises:
            ManagerNotRunningError: the manager is not running.
            RuntimeError: the consumer was entered before (it is single-use).
        """
        if self._state != "created":
            raise RuntimeError(f"this consumer is {self._state}; a consumer is single-use, make a new one")
        if not self._port.running:
            raise ManagerNotRunningError(
                "the manager is not running: enter the consumer inside the manager's block "
                "(async with AsyncManager(...) as manager, Consumer(store, registry, manager) as consumer:)"
            )
        self._state = "running"
        self._started_at = time.time()
        try:
            await self._leaser.tick()  # listed among the store's consumers from the start
        except BaseException:
            self._state = "stopped"  # cancelled while entering: nothing runs yet
            self._finished.set()
            raise
        self._host = asyncio.create_task(self._host_main(), name=f"tasker_async consumer {self.id}")
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Stop on a normal exit (then raise what broke the consumer, if anything did); kill on an exception."""
        if exc_type is not None:
            await self._kill_shielded()
            return
        try:
            await self.stop()
        except BaseException:
            await self._kill_shielded()
            raise
        self._raise_failure()

    async def serve_forever(self) -> None:
        """Wait until the consumer stops: :meth:`stop` or :meth:`kill` from elsewhere, or its manager stopping.

        Raises:
            RuntimeError: the consumer was never entered.
            Exception: what broke the consumer's loops, if anything did.
        """
        if self._host is None:
            raise RuntimeError("the consumer is not started: use it as async with Consumer(...) as consumer:")
        await self._finished.wait()
        self._raise_failure()

    async def stop(self) -> None:
        """Stop taking jobs, give back those not started, let running jobs finish and record them, then leave.

        Safe to call more than once, and along with :meth:`kill` (which then cuts the wait short).

        Raises:
            RuntimeError: awaited from inside a job of the consumer's manager, whose end it would
                wait for; nothing changes. Stop it from elsewhere, e.g. a task of its own:
                ``asyncio.create_task(consumer.stop())`` (keep a reference).
        """
        if self._port.runs_here():
            raise RuntimeError(
                "consumer.stop() awaited from inside a job of its manager would wait for that very job to "
                "finish; call it from outside, e.g. in a task of its own: asyncio.create_task(consumer.stop())"
            )
        self._request("stopping")
        await self._wait()

    async def kill(self) -> None:
        """Cancel running jobs and give them back at once (``once=True`` ones end ``failed``), then leave.

        Safe to call more than once, and while :meth:`stop` waits for running jobs.
        """
        self._request("killing")
        await self._wait()

    def _request(self, state: Literal["stopping", "killing"]) -> None:
        if self._state == "created":
            self._state = "stopped"
            self._finished.set()
            return
        if self._state == "running" or (state == "killing" and self._state == "stopping"):
            self._state = state
            self._requested.set()
            self._claimer.close()
            self._book.changed.set()  # a stop waiting for running jobs looks again

    def _manager_gone(self) -> None:
        if self._state == "running":
            log.info("consumer %s: its manager stopped; stopping", self.id)
            self._request("stopping")

    async def _wait(self) -> None:
        if self._host is not None:
            await self._finished.wait()

    async def _kill_shielded(self) -> None:
        with anyio.CancelScope(shield=True):
            await self.kill()

    def _raise_failure(self) -> None:
        failure, self._failure = self._failure, None
        if failure is not None:
            raise failure

    # -- the host ----------------------------------------------------------------

    async def _host_main(self) -> None:
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._claimer.run)
                tg.start_soon(self._leaser.run)
                tg.start_soon(self._outbox.run)
                await self._requested.wait()
                await drain(self._claimer, self._wiring, killing=lambda: self._state == "killing")
                tg.cancel_scope.cancel()
        except Exception as exc:
            self._failure = failure = what_broke(exc)
            log.error("consumer %s broke down; giving its jobs back", self.id, exc_info=failure)
        finally:
            with anyio.CancelScope(shield=True):
                await leave(self._wiring, self._runner)
            self._state = "stopped"
            self._finished.set()

    # -- observation ---------------------------------------------------------------

    def _heartbeat(self) -> ConsumerInfo:
        return ConsumerInfo(
            id=self.id,
            host=socket.gethostname(),
            pid=os.getpid(),
            started_at=self._started_at,
            capacity=self._port.capacity,
            running=self._book.running,
            heartbeat_at=time.time(),
            queues=self.queues,
        )

    def stats(self) -> ConsumerStats:
        """A snapshot of what the consumer holds and has done; O(1)."""
        return self._book.stats(len(self._outbox))

    def health(self) -> ConsumerHealth:
        """Whether it serves, and when its heartbeat last reached the store: what health probes ask; O(1)."""
        return ConsumerHealth(
            state=self._state,
            heartbeat_at=self._leaser.heartbeat_at,
            heartbeat_every=self._leaser.every(),
            running=self._book.running,
            capacity=self._port.capacity,
        )

    def queue_stats(self) -> Mapping[str, QueueStats]:
        """Each served queue's counts as last read, each second at most ({} before the first, kept if one fails)."""
        return self._leaser.counts.snapshot

    def __repr__(self) -> str:
        """Show the live counts, e.g. ``<Consumer host:12:ab12cd34 running queues=default running=3 ...>``."""
        s = self.stats()
        return (
            f"<Consumer {self.id} {self._state} queues={','.join(self.queues)} running={s.running}"
            f" prefetched={s.prefetched} unrecorded={s.unrecorded} delivered={s.delivered}"
            f" redelivered={s.redelivered} acked={s.acked} dead={s.dead} released={s.released}>"
        )
