"""How a worker process ends when its runs do not: a drain deadline, and a kill that a stubborn run cannot hold up."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tasker_async.durable import Client

from . import cli_stubborn_mod as stubborn
from . import cli_worker_mod as mod
from .cli_procs import Workers, cli, wait_until

pytestmark = pytest.mark.timeout(40)


async def test_a_drain_past_its_deadline_turns_into_a_kill(client: Client, procs: Workers, tmp_path: Path) -> None:
    worker = procs.start("--drain-timeout", "0.5")
    job = await client.submit(mod.hold, str(tmp_path), "late")
    await wait_until(lambda: mod.marks(tmp_path, "late") == [worker.pid])
    worker.signal(signal.SIGTERM)
    assert await worker.wait_exit() == 130, worker.output()
    assert "--drain-timeout" in worker.output()
    info = await job.info()
    assert (info.state, info.deliveries) == ("queued", 1)  # given back at once, not left to its lease


async def test_a_second_signal_ends_the_process_though_a_run_ignores_its_cancellation(
    client: Client, procs: Workers, tmp_path: Path
) -> None:
    worker = procs.start(target=stubborn.__name__)
    job = await client.submit(stubborn.spin, str(tmp_path), "spin")
    await wait_until(lambda: mod.marks(tmp_path, "spin") == [worker.pid])
    worker.signal(signal.SIGTERM)
    await worker.wait_output("draining")
    worker.signal(signal.SIGTERM)
    assert await worker.wait_exit() == 130, worker.output()
    assert mod.marks(tmp_path, "spin-cancelled")  # it was cancelled, and ignored it
    assert "ignore" in worker.output()
    info = await job.info()
    assert (info.state, info.deliveries) == ("queued", 1)


async def test_a_signal_after_the_drain_still_kills_a_run_the_manager_waits_for(
    client: Client, procs: Workers, tmp_path: Path
) -> None:
    worker = procs.start(target=stubborn.__name__)
    job = await client.submit(stubborn.spin, str(tmp_path), "spin")
    await wait_until(lambda: mod.marks(tmp_path, "spin") == [worker.pid])
    worker.signal(signal.SIGTERM)
    # Its timeout ends the job (recorded ``failed``): the consumer has drained, the coroutine goes on.
    await worker.wait_output("drained")
    assert (await job.info()).state == "failed"
    assert worker.popen.poll() is None
    worker.signal(signal.SIGTERM)
    assert await worker.wait_exit() == 130, worker.output()


@pytest.mark.parametrize("value", ["0", "-1", "soon"])
def test_a_bad_drain_timeout_is_a_usage_error(value: str, url: str) -> None:
    done = cli("worker", mod.__name__, "--store", url, f"--drain-timeout={value}")
    assert done.returncode == 2
    assert "--drain-timeout" in done.stderr
