"""``benchmarks/soak.py`` at a small size: it runs to the end and reports nothing lost, nothing leaked."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def soak(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "soak.py"), *args],
        cwd=ROOT,
        env={
            **os.environ,
            "PYTHONIOENCODING": "utf-8",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        },
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
        check=False,
    )


def rows(report: str) -> dict[str, str]:
    table = [line.strip("|").split("|") for line in report.splitlines() if line.startswith("| ")]
    return {name.strip(): value.strip() for name, value in table}


@pytest.mark.timeout(150)
def test_a_small_soak_loses_and_leaks_nothing() -> None:
    done = soak("--tasks", "20000")
    assert done.returncode == 0, done.stdout + done.stderr
    report = rows(done.stdout)
    assert report["tasks submitted"] == "20,000"
    assert report["tasks lost"] == "0"
    assert report["resources leaked"] == "0"
    assert report["aborted"] == "0"
    # The faults did happen: replacements, failures and cancellations.
    for name in (
        "retries after an unhealthy error",
        "failed (own error or retries used up)",
        "cancelled by their callers",
    ):
        assert int(report[name].replace(",", "")) > 0, (name, report)
    assert "verdict: PASS" in done.stdout


@pytest.mark.timeout(150)
def test_seconds_bounds_the_run_and_still_loses_nothing() -> None:
    done = soak("--tasks", "100000000", "--seconds", "0.5")
    assert done.returncode == 0, done.stdout + done.stderr
    report = rows(done.stdout)
    assert 0 < int(report["tasks submitted"].replace(",", "")) < 100_000_000
    assert (report["tasks lost"], report["resources leaked"]) == ("0", "0")
    assert "verdict: PASS" in done.stdout


def test_bad_arguments_are_refused() -> None:
    done = soak("--tasks", "0")
    assert done.returncode == 2
    assert "--tasks must be >= 1" in done.stderr
