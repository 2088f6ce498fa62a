"""Every example and the demo run to completion and print what they promise."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str) -> str:
    done = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_basic_example() -> None:
    out = run("examples/basic.py")
    assert out.count("INFO: Creating CalculatorResource") == 4
    assert "Task 1 (addition) result: 35" in out
    assert "Task 2 (subtraction) result: 60" in out
    assert "Active workers: 2" in out
    assert out.count("INFO: Destroying CalculatorResource") == 4
    assert out.rstrip().endswith("Basic usage example finished.")


@pytest.mark.parametrize(
    ("seed", "expected"),
    [
        ("1", "Problematic image task completed"),
        ("2", "no retries left"),
        ("3", "Problematic image task completed"),
    ],
)
def test_intermediate_example(seed: str, expected: str) -> None:
    out = run("examples/intermediate.py", "--seed", seed)
    assert "Priority thumbnail completed: video_thumbnail.jpg" in out
    assert "Immediate preview completed" in out
    assert expected in out
    assert "Available resources: 1" in out
    assert out.count("INFO: Creating ImageProcessor") == out.count("INFO: Destroying ImageProcessor")
    assert out.rstrip().endswith("Intermediate usage example finished.")
    if seed == "3":
        assert "WARN: Detected unhealthy error: processor_crash" in out


def test_advanced_example_bursts_up_and_back_down() -> None:
    out = run("examples/advanced.py", "--seed", "1")
    assert "SCALING: the supervisor adds 4 burst worker(s)" in out  # 18 queued: up to the maximum at once
    assert "SCALING: the supervisor retires" in out
    assert "Burst=4" in out
    assert "Urgent task result: Urgent report generated!" in out
    assert "Burst workers: 0" in out
    assert "Active workers: 0" in out
    assert out.count("INFO: Creating HeavyComputeResource") == out.count("INFO: Destroying HeavyComputeResource")
    assert out.rstrip().endswith("Advanced usage example finished.")


def test_demo() -> None:
    out = run("-m", "tasker_async", "demo", "--seed", "1")
    assert "priority task started" in out
    assert "scaling: +" in out
    assert "retried on connection" in out
    assert "state=stopped" in out
    assert "summary: 61 tasks" in out
    assert "(balanced)" in out


def test_cli_usage_and_errors() -> None:
    assert "demo" in run("-m", "tasker_async", "--help")
    bad = subprocess.run(
        [sys.executable, "-m", "tasker_async", "nonsense"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert bad.returncode == 2
