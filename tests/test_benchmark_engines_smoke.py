"""``python -m benchmarks.engines --smoke`` runs every installed system on both engines and prints the tables."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Each peer: the package it needs, its module in benchmarks/engines, the name its table row gives.
PEERS = {
    "redis": (("taskiq_redis", "taskiq_peer", "taskiq-redis"), ("saq", "saq_peer", "saq")),
    "postgres": (("procrastinate", "procrastinate_peer", "procrastinate"), ("pgqueuer", "pgqueuer_peer", "pgqueuer")),
}
ROW = r"\| {name} \| [\d,]+ \| [\d,]+-[\d,]+ \| [\d,]+ \|"


def engines_benchmark(*args: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.engines", *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONIOENCODING": "utf-8", **(env or {})},
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=140,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def installed(package: str, module: str) -> bool:
    return importlib.util.find_spec(package) is not None and (ROOT / "benchmarks" / "engines" / f"{module}.py").exists()


def assert_row(out: str, name: str) -> None:
    assert re.search(ROW.format(name=re.escape(name)), out), f"no row of {name} with numbers in:\n{out}"


@pytest.mark.timeout(150)
def test_smoke_measures_every_installed_system_on_both_engines() -> None:
    out = engines_benchmark("--smoke")
    assert "### redis: " in out
    assert "appendfsync always" in out
    assert "### postgres: PostgreSQL " in out
    assert "fsync on" in out
    assert "| system | jobs/s | min-max | submits/s | tasker_async over it | min-max |" in out
    assert out.count("| tasker_async | ") == 2
    for peers in PEERS.values():
        for package, module, name in peers:
            if installed(package, module):
                assert_row(out, name)
                assert re.search(rf"\| {re.escape(name)} \| .* \| [\d.]+x \|", out)
            else:
                assert f"skipped: {package} not installed" in out or f"{module} not found" in out


@pytest.mark.timeout(150)
def test_smoke_skips_peers_that_are_not_installed(tmp_path: Path) -> None:
    # A package that fails to import stands in for one that is not installed.
    hidden = [package for package, _, _ in PEERS["redis"]]
    for package in hidden:
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text(f"raise ImportError('{package} hidden by the test')\n")
    path = os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")]))
    out = engines_benchmark("redis", "--smoke", "--fsync", "everysec", env={"PYTHONPATH": path})
    assert_row(out, "tasker_async")
    assert "appendfsync everysec" in out
    for package, _, name in PEERS["redis"]:
        assert f"skipped: {package} not installed" in out
        assert f"| {name} |" not in out
    assert "### postgres" not in out


@pytest.mark.timeout(150)
def test_smoke_latency_and_recovery_report_their_tables() -> None:
    out = engines_benchmark("redis", "--smoke", "--latency")
    header = "| engine | system | server | rounds x jobs | p50 ms | p99 ms | each round's p99 | max ms | late ms |"
    assert header in out
    for system in ("tasker_async", "floor"):
        row = rf"\| redis \| {system} \| .* \| 1 x 100 \| [\d.]+ \| [\d.]+ \| [\d.]+ \| [\d.]+ \| [\d.]+ \|"
        assert re.search(row, out), f"no latency row of {system} in:\n{out}"
    assert re.search(r"(PASS|FAIL)  \[redis\] p99 at 500 jobs/s <= 10 ms: [\d.]+ ms \(median of rounds\)", out)
    out = engines_benchmark("redis", "--smoke", "--recovery")
    assert "| engine | server | kills | jobs | min | median | p90 | max |" in out
    assert re.search(r"\| redis \| .* \| 1 \| [1-9]\d* \| [\d.]+ \| [\d.]+ \| [\d.]+ \| [\d.]+ \|", out)
    assert re.search(r"(PASS|FAIL)  \[redis\] every job recovered within 1.5 x lease: [\d.]+", out)


@pytest.mark.timeout(150)
def test_smoke_runs_the_workflow_fan_out_on_every_engine() -> None:
    out = engines_benchmark("all", "--fanout", "--smoke")
    assert "## Workflow fan-out: 50 items into one fan-in" in out
    for engine in ("sqlite", "redis", "postgres"):
        row = rf"\| {engine} \(.*\) \| [\d,]+ \| [\d,]+ \| [\d.]+ \([\d.]+-[\d.]+\) \| ≥ 0.5 . \| [\d.]+ \|"
        assert re.search(row, out), f"no fan-out row of {engine} in:\n{out}"
        assert f"- {engine}: the consumer's store calls for 52 steps: " in out
