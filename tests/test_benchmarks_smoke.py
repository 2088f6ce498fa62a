"""``python -m benchmarks --smoke`` runs to the end and prints its tables, with or without the bench extra."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCH_EXTRA = ("aiojobs", "aiometer", "uvloop")


def smoke(env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--smoke"],
        cwd=ROOT,
        env={**os.environ, "PYTHONIOENCODING": "utf-8", **env},
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def assert_tables(out: str) -> None:
    assert "| loop | N | candidate | tasks/s |" in out
    assert "| asyncio | 200 | two-queue floor (submit->gather) |" in out
    assert "| asyncio | 200 | tasker_async submit->gather |" in out
    assert "| asyncio | 200 | tasker_async queue_task per caller |" in out
    assert "| asyncio | 200 | tasker_async |" in out  # bytes per queued task
    assert "| asyncio | tasker_async |" in out  # latency
    assert "[asyncio] submit->gather >= 0.75x the two-queue floor" in out


@pytest.mark.timeout(150)
def test_smoke_prints_the_tables() -> None:
    assert_tables(smoke({}))


@pytest.mark.timeout(150)
def test_smoke_skips_peers_that_are_not_installed(tmp_path: Path) -> None:
    # A package that fails to import stands in for one that is not installed.
    for name in BENCH_EXTRA:
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text(f"raise ImportError('{name} hidden by the test')\n")
    path = os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")]))
    out = smoke({"PYTHONPATH": path})
    assert_tables(out)
    for name in BENCH_EXTRA:
        assert f"skipped: {name} not installed" in out
    assert "| uvloop |" not in out
    assert "aiojobs Scheduler" not in out


@pytest.mark.timeout(150)
def test_large_sizes_run_the_pools_only_and_are_checked_against_the_smallest() -> None:
    # What --million does, at sizes a test can afford.
    from benchmarks._report import render
    from benchmarks._results import Settings
    from benchmarks._suite import run_suite

    settings = Settings(
        sizes=(200, 400), rounds=1, memory_tasks=200, latency_rate=50_000, latency_tasks=200, smoke=True, large=400
    )
    out = render(run_suite(settings, lambda line: None))
    assert "| asyncio | 400 | tasker_async submit->gather |" in out
    assert "| asyncio | 400 | tasker_async queue_task per caller |" in out
    assert "| asyncio | 200 | anyio task group + CapacityLimiter(8) |" in out
    assert "| asyncio | 400 | anyio task group" not in out
    assert "[asyncio] submit->gather ratio at N=400 within 15% of N=200:" in out
    assert "[asyncio] queue_task per caller ratio at N=400 within 15% of N=200:" in out
    aiojobs_verdict = next(line for line in out.splitlines() if "[asyncio] submit->gather >= 8x aiojobs" in line)
    assert "N=400" not in aiojobs_verdict
