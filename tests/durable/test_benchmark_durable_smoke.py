"""``python -m benchmarks.durable --smoke`` runs end to end and reports its numbers (their size is not judged)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def durable_benchmark(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "benchmarks.durable", *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONIOENCODING": "utf-8"},
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=100,
        check=False,
    )


def rate(out: str, run: str) -> float:
    """The jobs/s column of ``run``'s row."""
    row = next(line for line in out.splitlines() if line.startswith(f"| {run} |"))
    return float(row.split("|")[3].replace(",", ""))


@pytest.mark.timeout(120)
def test_smoke_runs_every_measurement_and_reports_numbers() -> None:
    done = durable_benchmark("--smoke")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "| run | jobs | jobs/s |" in out
    for run in ("no-op, durable", "1 ms, in-process", "1 ms, durable"):
        assert rate(out, run) > 0, out
    assert re.search(r"durable over in-process throughput: \d+\.\d\dx", out), out
    assert re.search(r"the durable path adds -?\d+\.\d{3} ms per job", out), out
    verdict = next(line for line in out.splitlines() if "no-op jobs through SQLiteStore" in line)
    assert verdict.split()[0] in ("PASS", "FAIL")
    assert "round 1/1" in done.stderr


def test_bad_arguments_are_refused() -> None:
    done = durable_benchmark("--rounds", "0")
    assert done.returncode == 2
    assert "must be at least 1" in done.stderr
