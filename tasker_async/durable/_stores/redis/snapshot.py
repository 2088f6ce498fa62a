"""A run as ``run_look`` (``run_calls.lua``) read it, in one script: what ``apply.info`` and ``apply.output`` read."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

from ..._model.records import ErrorInfo
from ..._model.workflow.machine import StepStatus
from ..._model.workflow.payload import unpack
from ..._model.workflow.records import RunEvent, RunState, StepState
from ..records import NewJob, NewRun, StepRef
from ..runs.plans import plans_of
from ..runs.table import ItemState, LiveJob, RunRow, StepTimes
from . import codec

__all__ = ("RunSnapshot", "status_of")


def status_of(value: bytes) -> StepStatus:
    """The status ``status_value`` (or ``runs.lua``) wrote."""
    fields = unpack(value)
    error = None if len(fields) < 9 else ErrorInfo(*(field.decode() for field in fields[6:9]))
    return StepStatus(
        state=cast(StepState, fields[0].decode()),
        parents_left=int(fields[1]),
        items=int(fields[2]) if fields[2] else None,
        items_done=int(fields[3]),
        items_failed=int(fields[4]),
        attempts=int(fields[5]),
        error=error,
    )


def _pairs(flat: Sequence[bytes]) -> list[tuple[str, bytes]]:
    return [(codec.text(flat[k]), flat[k + 1]) for k in range(0, len(flat), 2)]


def _time(value: bytes | None) -> float | None:
    return float(value) if value else None


class RunSnapshot:
    """A run as one ``run_look`` read it: a ``RunTable`` whose reads serve ``apply.info`` and ``apply.output``.

    It is read-only: the transitions run in the scripts, so every write raises ``TypeError``.
    """

    def __init__(self, run_id: str, reply: list[Any]) -> None:
        self._row: RunRow | None = None
        self._statuses: dict[str, StepStatus] = {}
        self._times: dict[str, StepTimes] = {}
        self._live: list[LiveJob] = []
        self._results: dict[str, bytes] = {}
        self._items: dict[str, dict[int, tuple[ItemState, bytes | None]]] = {}
        if reply:
            self._read(run_id, *reply)

    def _read(
        self, run_id: str, row: list[Any], st: list[bytes], times: list[bytes], live: list[Any], *rest: Any
    ) -> None:
        workflow, key, state, inputs, plans, created_at, finished_at, ttl = row
        self._row = RunRow(
            id=run_id,
            workflow=codec.text(workflow),
            key=None if key is None else codec.text(key),
            state=cast(RunState, codec.text(state)),
            inputs=bytes(inputs),
            steps=plans_of(codec.text(plans)),
            created_at=float(created_at),
            finished_at=_time(finished_at),
            result_ttl=float(ttl),
        )
        self._statuses = {name: status_of(value) for name, value in _pairs(st)}
        marks = dict(_pairs(times))
        for name in self._statuses:
            started, finished = marks.get(f"s:{name}"), marks.get(f"f:{name}")
            self._times[name] = StepTimes(started_at=_time(started), finished_at=_time(finished))
        for job_state, ref, deliveries, started_at in live:
            if ref is not None and job_state in (b"queued", b"running"):
                step = unpack(ref)[1].decode()
                running = job_state == b"running"
                since = _time(started_at)
                self._live.append(LiveJob(step=step, running=running, deliveries=int(deliveries), started_at=since))
        results, mapped = rest
        self._results = dict(_pairs(results))
        for name, flat in _pairs(mapped):
            self._items[name] = _items(cast(list[bytes], flat))

    async def run(self, run_id: str) -> RunRow | None:
        return self._row

    async def run_of_key(self, key: str) -> RunRow | None:
        raise TypeError("a run's snapshot does not look up keys")

    async def add_run(self, run: NewRun, now: float) -> None:
        raise TypeError("a run's snapshot is read-only")

    async def set_run(self, run_id: str, state: RunState, finished_at: float | None) -> None:
        raise TypeError("a run's snapshot is read-only")

    async def statuses(self, run: RunRow) -> dict[str, StepStatus]:
        return dict(self._statuses)

    async def set_statuses(self, run_id: str, statuses: Mapping[str, StepStatus], now: float) -> None:
        raise TypeError("a run's snapshot is read-only")

    async def times(self, run_id: str) -> dict[str, StepTimes]:
        return dict(self._times)

    async def step_started(self, run_id: str, step: str, at: float) -> None:
        raise TypeError("a run's snapshot is read-only")

    async def set_result(self, run_id: str, step: str, result: bytes) -> None:
        raise TypeError("a run's snapshot is read-only")

    async def result(self, run_id: str, step: str) -> bytes | None:
        return self._results.get(step)

    async def set_items(self, run_id: str, step: str, items: Mapping[int, tuple[ItemState, bytes | None]]) -> None:
        raise TypeError("a run's snapshot is read-only")

    async def items(self, run_id: str, step: str) -> dict[int, tuple[ItemState, bytes | None]]:
        return dict(self._items.get(step, {}))

    async def enqueue_steps(self, jobs: Sequence[NewJob], now: float) -> None:
        raise TypeError("a run's snapshot is read-only")

    async def stop_jobs(self, run_id: str, steps: Sequence[str], now: float) -> list[tuple[StepRef, int]]:
        raise TypeError("a run's snapshot is read-only")

    async def live_jobs(self, run_id: str) -> list[LiveJob]:
        return list(self._live)

    async def told(self, event: RunEvent) -> None:
        raise TypeError("a run's snapshot is read-only")


def _items(flat: list[bytes]) -> dict[int, tuple[ItemState, bytes | None]]:
    """A step's items hash (``s<i>``: state, ``v<i>``: value) by index."""
    states: dict[int, ItemState] = {}
    values: dict[int, bytes] = {}
    for field, value in _pairs(flat):
        if field[0] == "s":
            states[int(field[1:])] = cast(ItemState, codec.text(value))
        else:
            values[int(field[1:])] = value
    return {index: (state, values.get(index)) for index, state in states.items()}
