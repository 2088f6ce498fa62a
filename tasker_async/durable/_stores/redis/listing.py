"""What an operator reads of ``RedisStore``, each one script: queue counts, finished jobs, recent runs.

The scripts (``listing.lua``) read the indexes the writing scripts keep: ``<prefix>:ended:<state>:<queue>``
(finished jobs by ``finished_at``) and ``<prefix>:runs:in:<state>`` (runs by ``created_at``). An index entry
whose job or run is gone, or has left that state, is dropped by the read that meets it.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from ..._model.records import JobInfo, JobState, QueueStats
from ..._model.workflow.records import RunInfo, RunState
from .. import listing
from ..runs import apply
from . import codec
from .snapshot import RunSnapshot

__all__ = ("RedisListing",)

_INFO_FIELDS = " ".join(codec.INFO_FIELDS)


class RedisListing:
    """The protocol's counts and listings (``stats``, ``backlog``, ``finished_jobs``, ``recent_runs``); a mixin."""

    async def _run(self, name: str, *args: Any) -> Any:
        raise NotImplementedError

    async def queue_names(self) -> list[str]:
        """The queues that hold any job, sorted."""
        held = await self._run("queue_names")
        return sorted(codec.text(name) for name in held)

    async def stats(self, queue: str) -> QueueStats:
        """The counts of ``queue`` and the consumers heard from within ``CONSUMER_STALE_AFTER``."""
        ready1, ready0, delayed, running, dead, now, records, beats = await self._run("stats", queue)
        return QueueStats(
            ready_priority=int(ready1),
            ready_main=int(ready0),
            delayed=int(delayed),
            running=int(running),
            dead=int(dead),
            consumers=codec.consumers(records, beats, float(now)),
        )

    async def backlog(self, queues: Sequence[str]) -> int:
        """Ready jobs in ``queues``, both lanes."""
        ready, _ = await self._run("ready", *queues)
        return int(ready)

    async def finished_jobs(
        self, states: Collection[JobState], *, queue: str | None = None, limit: int = 50
    ) -> list[JobInfo]:
        """The jobs that finished in one of ``states``, newest ``finished_at`` first (``Store.finished_jobs``).

        Raises:
            ValueError: a state is not a finished one, or ``limit`` is not from 1 to ``MAX_LISTED``.
        """
        wanted, limit = listing.check_finished_states(states), listing.check_limit(limit)
        mine = ("0", "") if queue is None else ("1", queue)
        now, rows = await self._run("finished_jobs", limit, *mine, _INFO_FIELDS, *wanted)
        found = (codec.job_info(row, float(now)) for row in rows)
        return listing.newest_jobs((job[0] for job in found if job is not None), limit)

    async def recent_runs(self, *, states: Collection[RunState] | None = None, limit: int = 50) -> list[RunInfo]:
        """The runs in one of ``states``, newest ``created_at`` first (``Store.recent_runs``): one script for all.

        Raises:
            ValueError: a state is not a run state, or ``limit`` is not from 1 to ``MAX_LISTED``.
        """
        wanted, limit = listing.check_run_states(states), listing.check_limit(limit)
        runs: list[RunInfo] = []
        for run_id, look in await self._run("recent_runs", limit, *wanted):
            found = await apply.info(RunSnapshot(codec.text(run_id), look), codec.text(run_id))
            if found is not None:
                runs.append(found)
        return listing.newest_runs(runs, limit)
