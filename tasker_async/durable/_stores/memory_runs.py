"""The in-memory store's workflow runs: ``RunTable`` over dicts, with the job table for the runs' jobs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import anyio

from .._model.workflow.machine import StepStatus
from .._model.workflow.records import STEP_FINISHED, RunEvent, RunState
from .memory_table import JobTable
from .records import NewJob, NewRun, StepRef
from .runs.events import RunEventLog
from .runs.plans import run_purgeable
from .runs.table import ItemState, LiveJob, RunRow, StepTimes

__all__ = ("MemoryRuns",)


@dataclass(slots=True, eq=False)
class _Run:
    row: RunRow
    statuses: dict[str, StepStatus] = field(default_factory=dict)
    times: dict[str, StepTimes] = field(default_factory=dict)
    results: dict[str, bytes] = field(default_factory=dict)
    items: dict[str, dict[int, tuple[ItemState, bytes | None]]] = field(default_factory=dict)
    jobs: set[str] = field(default_factory=set)
    ended: anyio.Event | None = None  # set (and dropped) when the run finishes; made by the first waiter


class MemoryRuns:
    """The runs of one ``MemoryStore``; every method runs inside one of its synchronous steps."""

    def __init__(self, jobs: JobTable) -> None:
        self._jobs = jobs
        self.events = RunEventLog()
        self._runs: dict[str, _Run] = {}
        self._keys: dict[str, str] = {}

    def __len__(self) -> int:
        return len(self._runs)

    def ids(self, states: Sequence[RunState]) -> list[str]:
        """The ids of the runs in ``states``."""
        return [run_id for run_id, run in self._runs.items() if run.row.state in states]

    def purge(self, now: float) -> None:
        """Delete the runs ``run_purgeable`` says (their jobs go by their own ``result_ttl``)."""
        for run in [run for run in self._runs.values() if _purgeable(run.row, now)]:
            del self._runs[run.row.id]
            if run.row.key is not None and self._keys.get(run.row.key) == run.row.id:
                del self._keys[run.row.key]

    def ended_event(self, run_id: str) -> anyio.Event | None:
        """An event set when the run finishes (None if it is unknown)."""
        run = self._runs.get(run_id)
        if run is None:
            return None
        if run.ended is None:
            run.ended = anyio.Event()
        return run.ended

    async def run(self, run_id: str) -> RunRow | None:
        run = self._runs.get(run_id)
        return None if run is None else run.row

    async def run_of_key(self, key: str) -> RunRow | None:
        return await self.run(self._keys.get(key, ""))

    async def add_run(self, run: NewRun, now: float) -> None:
        row = RunRow(
            id=run.id,
            workflow=run.workflow,
            key=run.key,
            state="running",
            inputs=run.inputs,
            steps=run.steps,
            created_at=now,
            finished_at=None,
            result_ttl=run.result_ttl,
        )
        self._runs[run.id] = _Run(row)
        if run.key is not None:
            self._keys[run.key] = run.id

    async def set_run(self, run_id: str, state: RunState, finished_at: float | None) -> None:
        run = self._runs[run_id]
        run.row = replace(run.row, state=state, finished_at=finished_at)

    async def statuses(self, run: RunRow) -> dict[str, StepStatus]:
        return dict(self._runs[run.id].statuses)

    async def set_statuses(self, run_id: str, statuses: Mapping[str, StepStatus], now: float) -> None:
        run = self._runs[run_id]
        for name, status in statuses.items():
            run.statuses[name] = status
            times = run.times.get(name, StepTimes())
            finished_at = (times.finished_at or now) if status.state in STEP_FINISHED else None
            run.times[name] = StepTimes(started_at=times.started_at, finished_at=finished_at)

    async def times(self, run_id: str) -> dict[str, StepTimes]:
        return dict(self._runs[run_id].times)

    async def step_started(self, run_id: str, step: str, at: float) -> None:
        run = self._runs.get(run_id)
        if run is None:
            return
        times = run.times.get(step, StepTimes())
        if times.started_at is None or at < times.started_at:
            run.times[step] = StepTimes(started_at=at, finished_at=times.finished_at)

    async def set_result(self, run_id: str, step: str, result: bytes) -> None:
        self._runs[run_id].results[step] = result

    async def result(self, run_id: str, step: str) -> bytes | None:
        return self._runs[run_id].results.get(step)

    async def set_items(self, run_id: str, step: str, items: Mapping[int, tuple[ItemState, bytes | None]]) -> None:
        self._runs[run_id].items.setdefault(step, {}).update(items)

    async def items(self, run_id: str, step: str) -> dict[int, tuple[ItemState, bytes | None]]:
        return dict(self._runs[run_id].items.get(step, {}))

    async def enqueue_steps(self, jobs: Sequence[NewJob], now: float) -> None:
        for job in jobs:
            assert job.step is not None
            self._runs[job.step.run_id].jobs.add(job.id)
            self._jobs.enqueue(job, now)

    async def stop_jobs(self, run_id: str, steps: Sequence[str], now: float) -> list[tuple[StepRef, int]]:
        stopped = []
        for job_id in sorted(self._runs[run_id].jobs):
            job = self._jobs.jobs.get(job_id)
            if job is None or job.step is None or job.step.step not in steps:
                continue
            if job.state == "running":
                self._jobs.ask_cancel(job)
            elif job.state == "queued":
                self._jobs.cancel(job_id, now, report=False)
                stopped.append((job.step, job.deliveries))
        return stopped

    async def live_jobs(self, run_id: str) -> list[LiveJob]:
        live = []
        for job_id in sorted(self._runs[run_id].jobs):
            job = self._jobs.jobs.get(job_id)
            if job is not None and job.step is not None and job.state in ("queued", "running"):
                running = job.state == "running"
                live.append(
                    LiveJob(step=job.step.step, running=running, deliveries=job.deliveries, started_at=job.started_at)
                )
        return live

    async def told(self, event: RunEvent) -> None:
        self.events.add([event])
        run = self._runs[event.run_id]
        if event.kind != "started" and run.ended is not None:
            run.ended.set()
            run.ended = None


def _purgeable(row: RunRow, now: float) -> bool:
    return run_purgeable(row.state, row.finished_at, row.result_ttl, now)
