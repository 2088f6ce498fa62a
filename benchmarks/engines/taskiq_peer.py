"""taskiq with taskiq-redis: ``RedisStreamBroker`` and ``RedisAsyncResultBackend``, as its README shows.

The stream broker is taskiq-redis's broker with acknowledgements (a job taken by a worker that dies is
not lost), the one comparable with a durable queue. The result backend keeps results an hour
(``result_ex_time``, which the README recommends setting).

The worker is ``python -m benchmarks.engines.taskiq_peer worker URL N``: it runs taskiq's own worker
command, ``taskiq worker benchmarks.engines.taskiq_peer:worker_broker --workers 1 --max-async-tasks N
--log-level WARNING`` (one worker process, N tasks at once, no per-task log lines, everything else
taskiq's defaults, uvloop included when installed), with the URL in the environment for
``worker_broker``. The producer ``kiq``-s each job on a broker of its own and waits with
``wait_result(check_interval=0.01)``: the result backend is polled, and its default interval (0.2 s)
would hold every waiter up to 0.2 s per result; 10 ms is as often as polling makes sense.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from taskiq import AsyncTaskiqTask
from taskiq.cli.worker.cmd import WorkerCMD
from taskiq_redis import RedisAsyncResultBackend, RedisStreamBroker

from ._drive import drive
from ._system import System, Timing

__all__ = ("SYSTEM", "make_broker", "noop", "worker_broker")

URL_ENV = "TASKER_BENCH_TASKIQ_URL"
NAME = "bench.noop"
POLL = 0.01  # seconds between two looks at the result backend
RESULT_SECONDS = 3600


async def noop() -> None:
    """As little as a job can do."""


def make_broker(url: str) -> RedisStreamBroker:
    """A stream broker on ``url`` with a result backend there too, and the no-op task registered."""
    backend: RedisAsyncResultBackend[Any] = RedisAsyncResultBackend(redis_url=url, result_ex_time=RESULT_SECONDS)
    broker = RedisStreamBroker(url=url).with_result_backend(backend)
    broker.register_task(noop, task_name=NAME)
    return broker


def worker_broker() -> RedisStreamBroker:
    """The worker's broker (taskiq's worker command takes a factory): on the URL the environment names."""
    return make_broker(os.environ[URL_ENV])


def worker(url: str, concurrency: int) -> list[str]:
    """Argv of one worker process running ``concurrency`` no-op jobs at once."""
    return [sys.executable, "-m", "benchmarks.engines.taskiq_peer", "worker", url, str(concurrency)]


async def setup(url: str) -> None:
    """Create the stream's consumer group (the worker's start would too, after the first jobs went by)."""
    broker = make_broker(url)
    await broker.startup()
    await broker.shutdown()


async def produce(url: str, jobs: int, submitters: int) -> Timing:
    """``kiq`` the no-op task ``jobs`` times, then ``wait_result`` of each."""
    broker = make_broker(url)
    task = broker.find_task(NAME)
    if task is None:
        raise RuntimeError(f"task {NAME!r} is not registered")
    await broker.startup()
    try:

        async def submit() -> AsyncTaskiqTask[Any]:
            return await task.kiq()

        async def wait(handle: AsyncTaskiqTask[Any]) -> None:
            result = await handle.wait_result(check_interval=POLL)
            if result.is_err:
                raise RuntimeError(f"a taskiq no-op job failed: {result.error!r}")

        return await drive(submit, wait, jobs, submitters)
    finally:
        await broker.shutdown()


SYSTEM = System(name="taskiq-redis", engine="redis", worker=worker, setup=setup, produce=produce, module="taskiq_redis")


def main(argv: list[str]) -> int:
    """``worker URL N``: taskiq's worker command on ``URL`` with N tasks at once."""
    if len(argv) != 3 or argv[0] != "worker":
        sys.stderr.write(f"usage: {sys.executable} -m benchmarks.engines.taskiq_peer worker URL CONCURRENCY\n")
        return 2
    os.environ[URL_ENV] = argv[1]
    command = ["benchmarks.engines.taskiq_peer:worker_broker", "--workers", "1", "--max-async-tasks", argv[2]]
    return WorkerCMD().exec([*command, "--log-level", "WARNING"]) or 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
