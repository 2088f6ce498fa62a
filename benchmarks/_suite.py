"""Runs every measurement, pairing each candidate with its reference in the same round."""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from . import _peers
from ._floor import open_floor
from ._latency import open_loop_latency
from ._loops import LoopKind, Run, loop_kinds, running
from ._memory import bytes_per_queued_task
from ._results import (
    AIOJOBS,
    AIOMETER,
    ANYIO,
    FLOOR,
    FLOOR_PER_CALLER,
    FLOOR_POOL,
    GATHER_SEMAPHORE,
    TASKER_GATHER,
    TASKER_PER_CALLER,
    TASKER_POOL,
    Latency,
    Memory,
    Results,
    Settings,
    Throughput,
)
from ._tasker import open_tasker
from ._throughput import per_caller, submit_then_gather

Progress = Callable[[str], None]

# What runs at the large sizes (Settings.large): the pools, not the peers.
POOLS = (FLOOR, TASKER_GATHER, FLOOR_PER_CALLER, TASKER_PER_CALLER)


@dataclass(frozen=True, slots=True)
class Candidate:
    """A way to run N tasks: ``measure(n)`` returns the seconds it took."""

    name: str
    measure: Callable[[int], Coroutine[Any, Any, float]]
    reference: str | None  # the candidate it is measured back to back with; None for the floor
    needs: str | None = None  # a module from the bench extra


CANDIDATES = (
    Candidate(FLOOR, functools.partial(submit_then_gather, open_floor), None),
    Candidate(TASKER_GATHER, functools.partial(submit_then_gather, open_tasker), FLOOR),
    Candidate(FLOOR_PER_CALLER, functools.partial(per_caller, open_floor), FLOOR),
    Candidate(TASKER_PER_CALLER, functools.partial(per_caller, open_tasker), FLOOR_PER_CALLER),
    Candidate(AIOJOBS, _peers.aiojobs_scheduler, FLOOR, needs="aiojobs"),
    Candidate(AIOMETER, _peers.aiometer_run_all, FLOOR, needs="aiometer"),
    Candidate(ANYIO, _peers.anyio_task_group, FLOOR),
    Candidate(GATHER_SEMAPHORE, _peers.gather_semaphore, FLOOR),
)


def available(notes: list[str]) -> list[Candidate]:
    """The candidates whose libraries import; a note for each one that does not."""
    found = []
    for candidate in CANDIDATES:
        if candidate.needs is not None and not _peers.importable(candidate.needs):
            notes.append(f"skipped: {candidate.needs} not installed (it comes with the bench extra)")
        else:
            found.append(candidate)
    return found


def run_suite(settings: Settings, progress: Progress) -> Results:
    """Measure throughput, memory and latency on every available loop."""
    results = Results(settings=settings)
    kinds, loop_notes = loop_kinds()
    candidates = available(results.notes)
    results.notes.extend(loop_notes)
    for kind in kinds:
        results.loops.append(kind.name)
        _measure_on(kind, candidates, results, progress)
    return results


def _measure_on(kind: LoopKind, candidates: list[Candidate], results: Results, progress: Progress) -> None:
    settings = results.settings
    with running(kind) as run:
        # One unrecorded run of each candidate first: the first runs on a fresh
        # loop are slow (allocator arenas, code caches) and would skew round 1.
        for candidate in candidates:
            run(candidate.measure(min(settings.sizes)))
        progress(f"[{kind.name}] warmed up")
        for n in settings.sizes:
            measured = [c for c in candidates if n < settings.large or c.name in POOLS]
            results.throughput.extend(_throughput(run, kind.name, n, settings.rounds, measured, progress))
        results.memory.extend(_memory(run, kind.name, settings, progress))
        results.latency.extend(_latency(run, kind.name, settings, progress))


def _throughput(
    run: Run, loop: str, n: int, rounds: int, candidates: list[Candidate], progress: Progress
) -> list[Throughput]:
    by_name = {candidate.name: candidate for candidate in candidates}
    rates: dict[str, list[float]] = {candidate.name: [] for candidate in candidates}
    ratios: dict[str, list[float]] = {candidate.name: [] for candidate in candidates}
    for number in range(1, rounds + 1):
        for candidate in candidates:
            if candidate.reference is None:
                continue
            reference = by_name[candidate.reference]
            reference_seconds = run(reference.measure(n))
            seconds = run(candidate.measure(n))
            rates[reference.name].append(n / reference_seconds)
            rates[candidate.name].append(n / seconds)
            ratios[candidate.name].append(reference_seconds / seconds)
        done = ", ".join(f"{name} {values[-1]:.2f}" for name, values in ratios.items() if values)
        progress(f"[{loop}] N={n:,} round {number}/{rounds}: x reference: {done}")
    return [
        Throughput(
            loop=loop,
            n=n,
            name=candidate.name,
            reference=candidate.reference,
            rates=rates[candidate.name],
            ratios=ratios[candidate.name],
        )
        for candidate in candidates
    ]


def _memory(run: Run, loop: str, settings: Settings, progress: Progress) -> list[Memory]:
    n = settings.memory_tasks
    floor: list[float] = []
    tasker: list[float] = []
    for number in range(1, settings.rounds + 1):
        floor.append(run(bytes_per_queued_task(open_floor, n)))
        tasker.append(run(bytes_per_queued_task(open_tasker, n)))
        progress(f"[{loop}] memory round {number}/{settings.rounds}: {tasker[-1]:.0f} B vs floor {floor[-1]:.0f} B")
    ratios = [ours / theirs for ours, theirs in zip(tasker, floor, strict=True)]
    return [
        Memory(loop=loop, n=n, name=FLOOR_POOL, bytes_per_task=floor, ratios=[]),
        Memory(loop=loop, n=n, name=TASKER_POOL, bytes_per_task=tasker, ratios=ratios),
    ]


def _latency(run: Run, loop: str, settings: Settings, progress: Progress) -> list[Latency]:
    rate, count = settings.latency_rate, settings.latency_tasks
    floor = []
    tasker = []
    for number in range(1, settings.rounds + 1):
        floor.append(run(open_loop_latency(open_floor, rate, count)))
        tasker.append(run(open_loop_latency(open_tasker, rate, count)))
        progress(
            f"[{loop}] latency round {number}/{settings.rounds}: "
            f"p99 {tasker[-1].p99 * 1e3:.2f} ms vs floor {floor[-1].p99 * 1e3:.2f} ms"
        )
    return [
        Latency(loop=loop, name=FLOOR_POOL, p50=[s.p50 for s in floor], p99=[s.p99 for s in floor], ratios=[]),
        Latency(
            loop=loop,
            name=TASKER_POOL,
            p50=[s.p50 for s in tasker],
            p99=[s.p99 for s in tasker],
            ratios=[ours.p99 / theirs.p99 for ours, theirs in zip(tasker, floor, strict=True)],
        ),
    ]
