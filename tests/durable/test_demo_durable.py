"""``python -m tasker_async demo --durable``: two worker processes, one killed, every job succeeded once."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tasker_async._cli.demo_view import balance, fair_kill, tally
from tasker_async.durable import JobInfo, JobState

from .cli_procs import ROOT


@pytest.mark.timeout(30)
def test_the_durable_demo_balances() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tasker_async", "demo", "--durable", "--seed", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=25,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "worker A started" in out
    assert "SIGKILL worker A" in out
    assert "started again on another worker" in out
    assert "worker A (pid" in out
    assert "KILLED" in out
    assert "balance: submitted 24 = succeeded 24, 0 lost, 0 run twice to completion" in out
    assert "NOT balanced" not in out


def info(job_id: str, state: JobState, consumer: str | None, *, deliveries: int = 1, started: float = 0.0) -> JobInfo:
    return JobInfo(
        id=job_id,
        name="demo.render",
        queue="default",
        state=state,
        deliveries=deliveries,
        priority=False,
        key=None,
        created_at=0.0,
        started_at=started,
        finished_at=None,
        error=None,
        consumer=consumer,
    )


def test_the_books_count_a_second_completion_and_a_lost_job() -> None:
    books = balance(3, 2, 1, "0 11\n1 11\n1 12\n")
    assert (books.lost, books.twice, books.balanced) == (1, 1, False)
    assert books.line().startswith("balance: submitted 3 != succeeded 2, 1 lost, 1 run twice to completion")
    assert "NOT balanced" in books.line()
    assert balance(2, 2, 0, "0 11\n1 12\n").balanced


def test_a_kill_waits_until_every_job_of_the_victim_is_mid_run() -> None:
    seconds = {"a": 1.0, "b": 1.0, "c": 1.0}
    infos = [info("a", "running", "h:11:x", started=10.0), info("b", "running", "h:11:x", started=10.5)]
    assert fair_kill(infos, 11, seconds, now=10.6) == ["a", "b"]
    assert fair_kill(infos, 11, seconds, now=10.9) == []  # job a is about to end: it may have ended already
    assert fair_kill(infos, 12, seconds, now=10.6) == []  # not that worker's jobs
    assert fair_kill(infos[1:], 11, seconds, now=10.9) == ["b"]
    assert fair_kill([], 11, seconds, now=10.9) == []  # nothing to cut short


def test_the_tally_counts_per_process() -> None:
    counts = tally(
        [
            info("a", "running", "h:11:x"),
            info("b", "succeeded", "h:12:y", deliveries=2),
            info("c", "queued", "h:11:x"),
            info("d", "delayed", None),
        ]
    )
    assert (counts.queued, counts.finished) == (2, 1)
    assert (counts.running[11], counts.done[12], counts.redelivered[12], counts.redelivered[11]) == (1, 1, 1, 0)
