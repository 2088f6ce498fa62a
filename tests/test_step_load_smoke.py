"""``python -m benchmarks.step_load --smoke`` runs to the end and prints its table and verdict (not the ratio)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def step_load(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "benchmarks.step_load", *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONIOENCODING": "utf-8"},
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
        check=False,
    )


@pytest.mark.timeout(150)
def test_smoke_prints_the_table_and_the_verdict() -> None:
    done = step_load("--smoke", "--loop", "asyncio")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "| loop | pool | drain s |" in out
    for pool in ("fixed at the ceiling", "rate policy (default)", "backlog policy"):
        assert f"| asyncio | {pool} |" in out
    verdict = next(line for line in out.splitlines() if "[asyncio] step-load drain <= 1.10x" in line)
    assert verdict.split()[0] in ("PASS", "FAIL")
    assert "round 1/1" in done.stderr
    # Both bursting pools did add workers.
    rows = [line.split("|") for line in out.splitlines() if "policy" in line and line.startswith("| asyncio")]
    assert all(int(row[6]) > 0 for row in rows), out


def test_bad_arguments_are_refused() -> None:
    done = step_load("--workers", "8", "--max-workers", "4")
    assert done.returncode == 2
    assert "--max-workers must be at least --workers" in done.stderr
