"""``python -m benchmarks.cancel_storm`` runs at a tiny size and prints its table and verdict."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.timeout(60)
def test_the_cancel_storm_benchmark_runs() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.cancel_storm", "2000", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "| 2000 |" in done.stdout
    assert "cancel cost per task flat in N" in done.stdout
