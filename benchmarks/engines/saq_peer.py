"""saq on Redis: ``Queue.from_url``, a worker of ``concurrency=N``, as its README shows.

The worker is ``python -m benchmarks.engines.saq_peer worker URL N``: it runs saq's own entry
(``saq benchmarks.engines.saq_peer.settings``: one worker process, logging at its default WARNING) with
the URL and N in the environment, which ``settings`` (a callable, as saq allows) reads. The producer
``enqueue``-s each job on a queue of its own and waits with ``job.refresh(until_complete=...)``, saq's
way to wait for a job: a pub/sub notification when the job ends. A notification that comes between
the job's read and the subscription is missed and the wait would run out, so the wait is bounded
(``REFRESH`` seconds) and tried again, reading the job first each time; at most ``REFRESH`` seconds of
one waiter's time go to such a miss.

Jobs are enqueued with ``retries=5``, the delivery budget tasker_async's jobs have by default
(``max_deliveries=5``), instead of saq's 1: saq's worker sweeps its active list when it starts and every
60 s, and aborts a job it finds there still ``queued`` -- one just moved there by a dequeue whose status
update has not landed yet. Under load a sweep nearly always finds some; with a single try such a job
ends ``aborted`` (after it ran), with retries it runs again and ends ``complete``.
"""

from __future__ import annotations

import os
import sys

import anyio
from saq import Job, Queue, Status
from saq.runner import run
from saq.types import Context, SettingsDict

from ._drive import drive
from ._system import System, Timing

__all__ = ("SYSTEM", "noop", "settings")

URL_ENV = "TASKER_BENCH_SAQ_URL"
CONCURRENCY_ENV = "TASKER_BENCH_SAQ_CONCURRENCY"
RETRIES = 5  # tries per job (see above)
REFRESH = 0.1  # seconds one wait for a job's end may take before it reads the job again


async def noop(ctx: Context) -> None:
    """As little as a job can do."""


def settings() -> SettingsDict[Context]:
    """The worker's settings: the queue on the URL the environment names, the no-op task, N at once."""
    queue = Queue.from_url(os.environ[URL_ENV])
    return {"queue": queue, "functions": [noop], "concurrency": int(os.environ[CONCURRENCY_ENV])}


def worker(url: str, concurrency: int) -> list[str]:
    """Argv of one worker process running ``concurrency`` no-op jobs at once."""
    return [sys.executable, "-m", "benchmarks.engines.saq_peer", "worker", url, str(concurrency)]


async def setup(url: str) -> None:
    """Nothing to prepare: saq makes its keys as jobs come."""


async def _finished(job: Job) -> None:
    """Wait until ``job`` completes; raise if it fails, or ends aborted with no try left.

    A sweep (see above) aborts and retries a job: on the way it may read ``aborted`` with tries left,
    or ``queued`` again after a ``complete``; the wait goes on until the job settles.
    """
    while True:
        try:
            await job.refresh(until_complete=REFRESH)
        except TimeoutError:
            continue  # its end may have been missed: read it again
        if job.status == Status.COMPLETE:
            return
        if job.status == Status.FAILED or (job.status == Status.ABORTED and not job.retryable):
            raise RuntimeError(f"a saq no-op job ended {job.status}: {job.error}")
        await anyio.sleep(REFRESH)  # swept: retried soon


async def produce(url: str, jobs: int, submitters: int) -> Timing:
    """``enqueue`` the no-op task ``jobs`` times, then wait for each job's end."""
    queue = Queue.from_url(url)
    await queue.connect()
    try:

        async def submit() -> Job:
            job = await queue.enqueue("noop", retries=RETRIES)
            if job is None:
                raise RuntimeError("saq refused a job")
            return job

        return await drive(submit, _finished, jobs, submitters)
    finally:
        await queue.disconnect()


SYSTEM = System(name="saq", engine="redis", worker=worker, setup=setup, produce=produce, module="saq")


def main(argv: list[str]) -> int:
    """``worker URL N``: saq's worker on ``URL`` with N jobs at once."""
    if len(argv) != 3 or argv[0] != "worker":
        sys.stderr.write(f"usage: {sys.executable} -m benchmarks.engines.saq_peer worker URL CONCURRENCY\n")
        return 2
    os.environ[URL_ENV], os.environ[CONCURRENCY_ENV] = argv[1], argv[2]
    run("benchmarks.engines.saq_peer.settings", workers=1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
