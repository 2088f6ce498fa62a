"""The run-state machine driven like a scheduler over random DAGs (hypothesis), its invariants checked at every step.

A small in-memory "store" applies each transition and its effects: it enqueues released jobs, cancels the
queued ones of ``CancelSteps`` (and reports them, which the contract allows) and asks the running ones to stop,
and reports each job's outcome once. Random events: a live job starts (again, for a redelivery), succeeds,
fails or is cancelled by hand; the run is cancelled; a failed run is resumed.
"""

from __future__ import annotations

import collections
import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tasker_async.durable._model.records import ErrorInfo
from tasker_async.durable._model.workflow import STEP_FINISHED, machine
from tasker_async.durable._model.workflow.machine import CancelSteps, Effect, Release, RunEnded, StepShape, StepStatus

SETTINGS = settings(max_examples=200, deadline=None, derandomize=True, database=None)
MAX_ROUNDS = 3
BOOM = ErrorInfo("builtins.RuntimeError", "boom")
LIVE_JOB = frozenset({"queued", "running"})

Key = tuple[str, int | None]


@st.composite
def runs(draw: st.DrawFn) -> tuple[StepShape, ...]:
    """Up to 12 steps; each depends on a random set of earlier ones and may map over one of them.

    The shapes come in a random definition order, so the machine cannot lean on a topological one.
    """
    count = draw(st.integers(min_value=1, max_value=12))
    names = [f"s{index}" for index in range(count)]
    shapes = []
    for index, name in enumerate(names):
        bits = draw(st.integers(min_value=0, max_value=(1 << index) - 1))
        parents = tuple(names[parent] for parent in range(index) if bits >> parent & 1)
        mapped: str | None = None
        mapping = draw(st.booleans())
        if parents and mapping:
            mapped = draw(st.sampled_from(list(parents)))
        shapes.append(StepShape(name=name, parents=parents, map_over=mapped))
    return tuple(draw(st.permutations(shapes)))


@dataclass(slots=True)
class Job:
    key: Key
    round: int
    state: str = "queued"
    starts: int = 0
    stop_asked: bool = False


class Store:
    """Applies transitions as a store does, and checks each against what the machine promises."""

    def __init__(self, shapes: tuple[StepShape, ...]) -> None:
        self.shapes = shapes
        self.by_name = {shape.name: shape for shape in shapes}
        self.children = {name: [s.name for s in shapes if name in s.parents] for name in self.by_name}
        self.round = 1
        self.jobs: list[Job] = []
        self.released: set[tuple[int, str, int | None]] = set()
        self.ended: dict[int, list[str]] = collections.defaultdict(list)
        self.starts: collections.Counter[str] = collections.Counter()
        self.lengths: dict[str, int] = {}
        self.failed_live: set[str] = set()
        self.cancelled = False
        self.reports: list[Job] = []
        self.statuses: Mapping[str, StepStatus] = MappingProxyType({})
        statuses, effects = machine.start(shapes)
        self.apply(statuses, effects)

    # -- what the scheduler does

    def live_jobs(self) -> list[Job]:
        return [job for job in self.jobs if job.state in LIVE_JOB]

    def start(self, job: Job) -> None:
        job.state, job.starts = "running", job.starts + 1
        self.starts[job.key[0]] += 1
        self.statuses = MappingProxyType(machine.job_started(self.shapes, self.statuses, job.key[0]))
        self.check()

    def needs_length(self, step: str) -> bool:
        # A mapped step's list is as long as its items: only a step that is not mapped tells a length.
        return self.by_name[step].map_over is None and bool(machine.mapped_children(self.shapes, step))

    def end(self, job: Job, outcome: str, length: int = 0) -> None:
        step = job.key[0]
        job.state = outcome
        if self.statuses[step].state in ("ready", "running") and outcome != "succeeded":
            self.failed_live.add(step)
        if outcome == "succeeded":
            needed = self.needs_length(step)
            if needed and self.statuses[step].state in ("ready", "running"):
                self.lengths[step] = length
            result_items = length if needed else None
            self.apply(*machine.item_succeeded(self.shapes, self.statuses, step, result_items=result_items))
        elif outcome == "failed":
            self.apply(*machine.item_failed(self.shapes, self.statuses, step, error=BOOM))
        else:
            self.apply(*machine.item_cancelled(self.shapes, self.statuses, step))

    def cancel(self) -> None:
        # Cancelling a finished run only stops its stray items: it keeps its state.
        self.cancelled = self.cancelled or machine.run_state(self.statuses) == "running"
        self.apply(*machine.cancel_run(self.shapes, self.statuses))
        # Every job of the run is stopped or asked to stop.
        assert all(job.stop_asked for job in self.live_jobs())

    def resume(self) -> None:
        # The items whose latest job failed or was cancelled; those still running from before are not.
        failed_items = {
            name: tuple(
                index
                for (step, index), job in self.latest().items()
                if step == name and index is not None and job.state in ("failed", "cancelled")
            )
            for name, shape in self.by_name.items()
            if shape.map_over is not None and self.statuses[name].state == "failed"
        }
        self.round += 1
        self.failed_live = set()
        self.apply(*machine.resume(self.shapes, self.statuses, failed_items=failed_items), resuming=True)

    # -- applying a transition

    def apply(self, statuses: dict[str, StepStatus], effects: list[Effect], *, resuming: bool = False) -> None:
        before = self.statuses
        self.statuses = MappingProxyType(statuses)
        # A finished step stays as it is: only a resume takes failed ones back.
        if not resuming:
            assert all(statuses[name].state == old.state for name, old in before.items() if old.state in STEP_FINISHED)
        for effect in effects:
            if isinstance(effect, Release):
                self.release(effect)
            elif isinstance(effect, CancelSteps):
                self.stop(effect.steps)
            else:
                assert isinstance(effect, RunEnded)
                assert machine.run_state(before) == "running"
                assert effect.state == machine.run_state(self.statuses)
                self.ended[self.round].append(effect.state)
        self.check()
        # The jobs a CancelSteps cancelled in the queue are reported once the transition is applied.
        while self.reports:
            job = self.reports.pop(0)
            job.state = "cancelled"
            self.apply(*machine.item_cancelled(self.shapes, self.statuses, job.key[0]))

    def release(self, effect: Release) -> None:
        shape, status = self.by_name[effect.step], self.statuses[effect.step]
        # Fan-in: released only once every parent succeeded, every result of theirs recorded.
        assert status.state == "ready"
        assert all(self.statuses[parent].state == "succeeded" for parent in shape.parents)
        assert all(self.has_result(parent) for parent in shape.parents)
        assert (effect.items is None) == (shape.map_over is None)
        latest = self.latest()
        for index in (None,) if effect.items is None else effect.items:
            key = (effect.step, index)
            # Once per round, and never while a job of the same item lives or after one succeeded.
            assert (self.round, *key) not in self.released
            assert key not in latest or latest[key].state in ("failed", "cancelled")
            self.released.add((self.round, *key))
            self.jobs.append(Job(key, self.round))

    def stop(self, steps: tuple[str, ...]) -> None:
        for job in self.live_jobs():
            if job.key[0] not in steps:
                continue
            job.stop_asked = True
            if job.state == "queued":
                self.reports.append(job)

    # -- what must hold

    def latest(self) -> dict[Key, Job]:
        return {job.key: job for job in self.jobs}

    def has_result(self, step: str) -> bool:
        status, shape = self.statuses[step], self.by_name[step]
        keys = [(step, None)] if shape.map_over is None else [(step, index) for index in range(status.items or 0)]
        succeeded = collections.Counter(job.key for job in self.jobs if job.state == "succeeded")
        return all(succeeded[key] == 1 for key in keys)

    def expected_items(self, shape: StepShape) -> int | None:
        if shape.map_over is None or self.statuses[shape.map_over].state != "succeeded":
            return None
        parent = self.by_name[shape.map_over]
        return self.statuses[parent.name].items if parent.map_over else self.lengths[parent.name]

    def descendants(self, name: str) -> set[str]:
        found: set[str] = set()
        todo = list(self.children[name])
        while todo:
            step = todo.pop()
            if step not in found:
                found.add(step)
                todo.extend(self.children[step])
        return found

    def check(self) -> None:
        live = collections.Counter(job.key[0] for job in self.live_jobs())
        for name, status in self.statuses.items():
            self.check_step(self.by_name[name], status, live[name])
        state = machine.run_state(self.statuses)
        assert self.ended[self.round] == ([] if state == "running" else [state])
        if not self.cancelled:
            failed = {name for name, status in self.statuses.items() if status.state == "failed"}
            upstream = {name for name, status in self.statuses.items() if status.state == "upstream_failed"}
            assert upstream == {d for name in failed for d in self.descendants(name)}
            assert failed <= self.failed_live

    def check_step(self, shape: StepShape, status: StepStatus, live: int) -> None:
        parents_done = [self.statuses[parent].state == "succeeded" for parent in shape.parents]
        if status.state in ("ready", "running", "succeeded"):
            assert all(parents_done)
        if status.state in ("pending", "upstream_failed"):
            assert status.parents_left == parents_done.count(False)
        assert status.attempts == self.starts[shape.name]
        assert (status.error is not None) == (status.state == "failed")
        if self.expected_items(shape) is not None:
            assert status.items == self.expected_items(shape)
        if shape.map_over is None:
            assert status.items is None
            assert live == (1 if status.state in ("ready", "running") else 0) or status.state == "cancelled"
        else:
            assert status.items_open >= 0
            # Every released item job is accounted for: done, failed, or still live.
            if status.state in ("ready", "running", "failed", "succeeded"):
                assert live == status.items_open
        if status.state == "succeeded":
            assert self.has_result(shape.name)

    def check_final(self) -> None:
        state = machine.run_state(self.statuses)
        states = {status.state for status in self.statuses.values()}
        # A run without live jobs is never stuck: it ended, in the state its failures imply.
        assert state != "running"
        if self.cancelled:
            assert state == "cancelled"
        elif self.failed_live:
            assert state == "failed"
            assert states <= {"succeeded", "failed", "upstream_failed"}
        else:
            assert state == "succeeded"


@SETTINGS
@given(runs(), st.data())
def test_a_run_driven_at_random_keeps_every_promise_of_the_machine(
    shapes: tuple[StepShape, ...], data: st.DataObject
) -> None:
    store = Store(shapes)
    failing = data.draw(st.integers(min_value=0, max_value=4), label="failure weight")
    # The event a cancel comes at: most runs are never cancelled, some after they finished.
    cancel_at = data.draw(st.integers(min_value=0, max_value=150), label="cancel at")
    for event in itertools.count():
        live = store.live_jobs()
        failed = machine.run_state(store.statuses) == "failed" and store.round < MAX_ROUNDS
        if event == cancel_at:
            store.cancel()
        elif not live:
            if not (failed and data.draw(st.booleans(), label="resume")):
                break
            store.resume()
        elif failed and data.draw(st.integers(min_value=0, max_value=9), label="resume now") == 0:
            store.resume()  # while items of a failed mapped step still run
        else:
            act(store, live, data, failing)
    store.check_final()


def act(store: Store, live: list[Job], data: st.DataObject, failing: int) -> None:
    # One draw picks the job and what happens to it: draws are what these runs spend their time on.
    pick = data.draw(st.integers(min_value=0, max_value=20 * len(live) - 1), label="job and event")
    job, roll = live[pick // 20], pick % 20
    if job.state == "queued":
        if roll == 0:
            store.end(job, "cancelled")  # cancelled by hand before it started
        else:
            store.start(job)
    elif job.stop_asked and roll < 10:
        store.end(job, "cancelled")
    elif roll < 2 and job.starts < 3:
        store.start(job)  # redelivered: its lease ran out
    elif roll < 2 + failing:
        store.end(job, "failed")
    elif roll == 19 and failing:
        store.end(job, "cancelled")  # cancelled by hand while running
    elif store.needs_length(job.key[0]):
        store.end(job, "succeeded", data.draw(st.integers(min_value=0, max_value=4), label="result length"))
    else:
        store.end(job, "succeeded")


def test_the_store_double_of_these_tests_sees_a_broken_fan_in() -> None:
    # The checks above must be able to fail: a release before a parent succeeded trips them.
    store = Store((StepShape(name="a"), StepShape(name="b", parents=("a",))))
    statuses = dict(store.statuses)
    statuses["b"] = StepStatus(state="ready")
    with pytest.raises(AssertionError):
        store.apply(statuses, [Release(step="b")])
