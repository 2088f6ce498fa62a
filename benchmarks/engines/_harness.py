"""Throughput runs: each system on a fresh engine with a fresh, warmed-up worker; rounds alternate systems."""

from __future__ import annotations

import asyncio
import gc
import importlib
import importlib.util
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .._peers import importable
from . import tasker_peer
from ._process import watched, worker_process
from ._servers import EngineServer
from ._system import System, Timing

__all__ = ("PEERS", "EngineResult", "Settings", "find_systems", "measure_engine")

# The peers of each engine: (the module that defines its SYSTEM, the package it needs).
PEERS = {
    "redis": (("benchmarks.engines.taskiq_peer", "taskiq_redis"), ("benchmarks.engines.saq_peer", "saq")),
    "postgres": (
        ("benchmarks.engines.procrastinate_peer", "procrastinate"),
        ("benchmarks.engines.pgqueuer_peer", "pgqueuer"),
    ),
}
# What tasker_async needs on each engine (its store's driver).
DRIVERS = {"redis": "redis", "postgres": "asyncpg"}
START_LIMIT = 60.0  # seconds a fresh worker may take to run its warm-up jobs


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """The load of one throughput run, the rounds, and the engines to run on."""

    engines: tuple[str, ...] = ("redis",)
    jobs: int = 20_000
    concurrency: int = 32
    submitters: int = 64
    rounds: int = 5
    fsync: str = "always"
    smoke: bool = False

    @property
    def warm_up(self) -> int:
        """Jobs each fresh worker runs before the clock starts."""
        return 2 * self.concurrency

    @property
    def limit(self) -> float:
        """Seconds one timed run may take before it counts as failed (at least 50 jobs/s)."""
        return 120.0 + self.jobs / 50


@dataclass(slots=True)
class EngineResult:
    """One engine's runs: the timings of each system per round (None: that run failed), failures, skipped peers."""

    engine: str
    server: str
    systems: list[str]
    timings: dict[str, list[Timing | None]] = field(default_factory=dict)
    failures: dict[str, list[str]] = field(default_factory=dict)  # why each failed run failed
    skipped: list[str] = field(default_factory=list)


def find_systems(engine: str) -> tuple[list[System], list[str]]:
    """tasker_async and the peers of ``engine`` whose packages import; and a line per one skipped."""
    skipped: list[str] = []
    if not importable(DRIVERS[engine]):
        return [], [f"every system: skipped: {DRIVERS[engine]} not installed"]
    systems = [tasker_peer.SYSTEMS[engine]]
    for module, package in PEERS[engine]:
        short = module.rsplit(".", 1)[-1]
        if not importable(package):
            skipped.append(f"{short}: skipped: {package} not installed")
        elif importlib.util.find_spec(module) is None:
            skipped.append(f"{short}: skipped: {module} not found")
        else:
            system = importlib.import_module(module).SYSTEM
            if not isinstance(system, System) or system.engine != engine:
                raise TypeError(f"{module}.SYSTEM is not a System on {engine}: {system!r}")
            systems.append(system)
    return systems, skipped


async def one_run(server: EngineServer, system: System, settings: Settings, log: Path) -> Timing:
    """One timed run of ``system``: a fresh engine, ``setup``, a fresh worker warmed up, then the clock."""
    async with server.fresh() as url:
        await system.setup(url)
        async with worker_process(system.worker(url, settings.concurrency), log) as worker:
            warm = system.produce(url, settings.warm_up, settings.submitters)
            await watched(worker, warm, limit=START_LIMIT, what="the warm-up", log=log)
            gc.collect()
            timed = system.produce(url, settings.jobs, settings.submitters)
            return await watched(worker, timed, limit=settings.limit, what="the timed run", log=log)


def measure_engine(
    server: EngineServer, settings: Settings, progress: Callable[[str], None], folder: str | None = None
) -> EngineResult:
    """``settings.rounds`` rounds, each running every system once, in turn (each run in a fresh event loop)."""
    systems, skipped = find_systems(server.engine)
    result = EngineResult(server.engine, server.describe(), [s.name for s in systems], skipped=skipped)
    with tempfile.TemporaryDirectory(prefix="tasker-bench-logs-", dir=folder) as logs:
        for number in range(1, settings.rounds + 1):
            shown = []
            for system in systems:
                runs = result.timings.setdefault(system.name, [])
                log = Path(logs) / f"{server.engine}-{system.name}-{number}.log"
                try:
                    timing = asyncio.run(one_run(server, system, settings, log))
                except Exception as exc:  # told in the table; the next round tries again
                    why = f"{type(exc).__name__}: {exc}"
                    result.failures.setdefault(system.name, []).append(why)
                    progress(f"{server.engine} {system.name} failed: {why}")
                    runs.append(None)
                    continue
                runs.append(timing)
                shown.append(f"{system.name} {settings.jobs / timing.seconds:,.0f} jobs/s")
            progress(f"{server.engine} round {number}/{settings.rounds}: {', '.join(shown)}")
    return result
