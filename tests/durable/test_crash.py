"""Crashes with real processes: workers SIGKILLed mid-run on a shared SQLite store, and long runs."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tasker_async.durable import Client, JobLostError

from . import cli_worker_mod as mod
from .cli_procs import Workers, wait_until

pytestmark = pytest.mark.timeout(30)


async def test_the_jobs_of_a_killed_worker_finish_on_another(client: Client, procs: Workers, tmp_path: Path) -> None:
    first = procs.start()
    jobs = [await client.submit(mod.hold, str(tmp_path), "crash") for _ in range(2)]
    await wait_until(lambda: mod.marks(tmp_path, "crash") == [first.pid, first.pid])
    second = procs.start()
    await second.wait_serving()
    first.kill()
    killed_at = time.monotonic()
    (tmp_path / "release").touch()  # the runs on the second worker finish as soon as they start
    await wait_until(lambda: mod.marks(tmp_path, "crash").count(second.pid) == 2, timeout=3 * mod.LEASE)
    taken_over_after = time.monotonic() - killed_at
    assert taken_over_after <= 1.5 * mod.LEASE
    assert [await job.result(timeout=5) for job in jobs] == [second.pid, second.pid]
    assert [(await job.info()).deliveries for job in jobs] == [2, 2]


async def test_a_job_running_ten_leases_is_delivered_once(client: Client, procs: Workers, tmp_path: Path) -> None:
    # Two workers: if the lease of the running job lapsed, the idle one would take it.
    started = [procs.start(), procs.start()]
    for worker in started:
        await worker.wait_serving()
    job = await client.submit(mod.sleep, 10 * mod.SHORT_LEASE, str(tmp_path), "long")
    pid = await job.result(timeout=10 * mod.SHORT_LEASE + 5)
    assert pid in {worker.pid for worker in started}
    info = await job.info()
    assert (info.state, info.deliveries) == ("succeeded", 1)
    assert mod.marks(tmp_path, "long") == [pid]


async def test_a_once_job_whose_worker_is_killed_ends_lost(client: Client, procs: Workers, tmp_path: Path) -> None:
    started = {worker.pid: worker for worker in (procs.start(), procs.start())}
    for worker in started.values():
        await worker.wait_serving()
    job = await client.submit(mod.hold, str(tmp_path), "once", once=True)
    await wait_until(lambda: len(mod.marks(tmp_path, "once")) == 1)
    [pid] = mod.marks(tmp_path, "once")
    started[pid].kill()
    (tmp_path / "release").touch()  # a second run, were there one, would succeed
    with pytest.raises(JobLostError) as raised:
        await job.result(timeout=3 * mod.LEASE)
    assert raised.value.error.type == "tasker_async.durable._model.errors.JobLostError"
    info = await job.info()
    assert (info.state, info.deliveries) == ("failed", 1)
    assert mod.marks(tmp_path, "once") == [pid]
