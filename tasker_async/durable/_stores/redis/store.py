"""``RedisStore``: the store protocol on a Redis (>= 7.0) or Valkey server, one Lua function per operation."""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit

import anyio
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ..._model.errors import StoreUnavailableError
from ..._model.records import FINISHED, JobInfo
from ..._model.serializer import JSONSerializer, Serializer
from ..group import GroupCommit
from ..records import Finished, Lease, NewJob, Outcome
from ..shared import Waiting
from ..waiting import Parked
from . import codec
from .claims import RedisClaims
from .handed import Handed
from .listing import RedisListing
from .ready import RECHECK, ReadyWaits
from .runs import RedisRuns
from .scripts import Scripts
from .watch import Watch

__all__ = ("RedisStore",)

_INFO_FIELDS = " ".join(codec.INFO_FIELDS)
# Groups of submits (and of reads) on their way at once: each on a connection of its own.
_IN_FLIGHT = 4
# Expired results a purge deletes per script at most.
_PURGE_BATCH = 500


class RedisStore(RedisClaims, RedisRuns, RedisListing, Waiting):
    """A store on a Redis or Valkey server: many processes on many machines share it.

    Every operation is one Lua function, so each is atomic on the server; waiting for a result or
    for ready jobs listens on pub/sub. Durability is the server's: with ``appendonly yes`` and
    ``appendfsync always`` a job is on disk when ``enqueue`` returns (``everysec`` leaves a one-second
    window). Redis Cluster is not supported (the scripts build their keys); a primary with replicas is.

    Args:
        url: ``redis://[user:password@]host[:port][/db]`` or ``rediss://...`` (TLS).
        serializer: how clients encode arguments and results (JSON by default).
        prefix: the prefix of every key and channel, so several stores can share one database.
        timeout: seconds to wait for the server on connect and on each call before the call fails
            with ``StoreUnavailableError``.
    """

    def __init__(
        self, url: str, *, serializer: Serializer | None = None, prefix: str = "tasker", timeout: float = 5.0
    ) -> None:
        self.serializer: Serializer = serializer if serializer is not None else JSONSerializer()
        self._url = url
        self._prefix = prefix
        self._timeout = timeout
        parts = urlsplit(url)
        # The password never shows in messages.
        self._where = f"{parts.scheme}://{parts.hostname}:{parts.port or 6379}{parts.path}"
        self._client: Redis | None = None
        # The jobs handed to this object's waiting consumers (claims.py), kept until their claims take them.
        self._handed = Handed()
        self._scripts: Scripts | None = None
        self._watch: Watch | None = None
        # The waits for ready jobs, and what the claims tell them.
        self._ready_waits = ReadyWaits(self._look, self._handed.pending)
        # Writes that record outcomes or give jobs back, while they are on their way (see ``renew``).
        self._in_flight: set[anyio.Event] = set()
        # Concurrent submits share one script call (one round trip, one append-only file sync), and so
        # do concurrent reads of jobs (waiters woken by one message look at once).
        self._enqueues = GroupCommit(self._enqueue_group, in_flight=_IN_FLIGHT)
        self._reads = GroupCommit(self._read_group, in_flight=_IN_FLIGHT)

    def __repr__(self) -> str:
        return f"RedisStore({self._where!r}, prefix={self._prefix!r})"

    async def __aenter__(self) -> Self:
        """Connect, and start listening for finished and ready jobs."""
        client = Redis.from_url(
            self._url, socket_timeout=self._timeout, socket_connect_timeout=self._timeout, decode_responses=False
        )
        try:
            await client.ping()
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            await client.aclose()
            raise self._unavailable(exc) from exc
        try:
            self._scripts = await Scripts.load(client)
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            await client.aclose()
            raise self._unavailable(exc) from exc
        except ResponseError as exc:
            await client.aclose()
            raise RuntimeError(
                f"Redis store at {self._where} could not load its functions (it needs Redis 7.0 or later, or Valkey):"
                f" {exc}"
            ) from exc
        self._client = client
        self._watch = Watch(client, self._prefix, self._handed)
        self._watch.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Stop listening and disconnect."""
        with anyio.CancelScope(shield=True):
            await self._ready_waits.close()
            if self._watch is not None:
                await self._watch.close()
            if self._client is not None:
                await self._client.aclose()
        self._client = self._scripts = self._watch = None

    def _unavailable(self, exc: BaseException) -> StoreUnavailableError:
        return StoreUnavailableError(f"Redis store at {self._where} is unavailable: {exc}")

    async def _run(self, name: str, *args: Any) -> Any:
        if self._scripts is None:
            raise RuntimeError("enter the RedisStore (async with) before using it")
        try:
            reply, told = await self._scripts.run(name, [self._prefix, *args])
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            raise self._unavailable(exc) from exc
        if told:
            self._run_events.add(told)
        return reply

    async def _write(self, name: str, *args: Any) -> Any:
        """Run a script that ends holds, known to ``renew`` until it has returned."""
        done = anyio.Event()
        self._in_flight.add(done)
        try:
            return await self._run(name, *args)
        finally:
            self._in_flight.discard(done)
            done.set()

    async def enqueue(self, job: NewJob) -> str:
        """Store ``job`` and return its id; a key (or an id) already in use returns that job's id, storing nothing."""
        return await self._enqueues(job)

    async def _enqueue_group(self, jobs: list[NewJob]) -> list[str]:
        packed = b"".join(map(codec.pack_job, jobs))
        # Expected before they are stored, so no message about them can come first: a waiter on one of them
        # skips its first look (one read fewer per job waited on) unless its end was heard of meanwhile.
        watch = self._watch
        expected = watch.waiters.expected if watch is not None and watch.listening else None
        if expected is not None:
            expected.add(job.id for job in jobs)
        ids = [codec.text(job_id) for job_id in await self._run("enqueue", packed)]
        if expected is not None:
            expected.discard(job.id for job, stored in zip(jobs, ids, strict=True) if stored != job.id)
        return ids

    async def complete(self, outcomes: Sequence[Outcome]) -> list[bool]:
        """Record each outcome whose lease is still held; True where recorded. Waiters learn of each."""
        if not outcomes:
            return []
        return [flag == 1 for flag in await self._write("complete", codec.outcomes_arg(outcomes))]

    async def release(self, leases: Sequence[Lease], *, started: bool) -> None:
        """Give held jobs back: unstarted ones keep their place and their delivery is taken back."""
        if leases:
            await self._write("release", "1" if started else "0", *codec.lease_args(leases))

    async def cancel(self, job_id: str) -> bool:
        """Cancel a queued or delayed job at once; flag a running one for its holder. False if finished or unknown."""
        return bool(await self._run("cancel", job_id))

    async def reclaim(self) -> int:
        """Take back the running jobs whose lease has expired; return how many."""
        return int(await self._run("reclaim"))

    async def requeue_dead(self, job_id: str) -> bool:
        """Give a dead job another round: deliveries from zero, ready now. False if it is not dead."""
        return bool(await self._run("requeue_dead", job_id))

    async def purge(self) -> int:
        """Delete the jobs finished longer than their ``result_ttl`` ago (never dead ones), and such runs."""
        await self._purge_runs(_PURGE_BATCH)
        total = 0
        while True:
            # Each call takes up to _PURGE_BATCH, and holds the server only that long.
            gone, looked_at = await self._run("purge", _PURGE_BATCH)
            total += int(gone)
            if int(looked_at) < _PURGE_BATCH:
                return total

    async def _read_group(self, job_ids: list[str]) -> list[tuple[JobInfo, bytes | None] | None]:
        now, rows = await self._run("infos", _INFO_FIELDS, *job_ids)
        return [codec.job_info(row, float(now)) for row in rows]

    async def info(self, job_id: str) -> JobInfo | None:
        """The job's snapshot, or None if it is unknown (or purged)."""
        found = await self._reads(job_id)
        return None if found is None else found[0]

    async def _finished(self, job_id: str) -> Finished | None:
        told = self._watch.outcomes.take(job_id) if self._watch is not None else None
        # A snapshot told with the job's end (of a finished job: no clock changes its state) spares the read.
        found = codec.job_info(told, 0.0) if told is not None else await self._reads(job_id)
        if found is None:
            raise LookupError(f"no job {job_id!r}: it is unknown, or was purged")
        return Finished(*found) if found[0].state in FINISHED else None

    def _unheard(self, job_id: str) -> bool:
        watch = self._watch
        return watch is not None and watch.waiters.expected.unheard(job_id)

    def _parked(self, job_id: str) -> Parked:
        return Parked(self._require_watch().waiters, job_id, poll=RECHECK)

    async def wait_ready(self, queues: Sequence[str], timeout: float) -> None:
        """Return once jobs of ``queues`` are ready (at once if some are), or after ``timeout`` seconds at most."""
        await self._ready_waits.wait(self._require_watch(), queues, timeout)

    async def _look(self, queues: Sequence[str]) -> Any:
        return await self._run("ready", *queues)

    async def wait_cancel_request(self, consumer: str, timeout: float) -> bool:
        """Wait ``timeout`` seconds at most for a cancel request to one of ``consumer``'s running jobs (pub/sub)."""
        return await self._require_watch().waiters.cancels.wait(consumer, timeout)

    def _require_watch(self) -> Watch:
        if self._watch is None:
            raise RuntimeError("enter the RedisStore (async with) before using it")
        return self._watch
