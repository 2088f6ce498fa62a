"""Worker processes for the CLI and crash tests: started, watched through their output, always reaped."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio

ROOT = Path(__file__).resolve().parent.parent.parent
MODULE = "tests.durable.cli_worker_mod"
DEADLINE = 10.0  # seconds any awaited condition may take before the test fails


class Worker:
    """One ``python -m tasker_async worker`` process; its output (both streams) goes to a file."""

    def __init__(self, popen: subprocess.Popen[bytes], log: Path) -> None:
        self.popen = popen
        self.log = log

    @property
    def pid(self) -> int:
        return self.popen.pid

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def signal(self, signum: signal.Signals) -> None:
        self.popen.send_signal(signum)

    def kill(self) -> None:
        """SIGKILL, and reap."""
        self.popen.kill()
        self.popen.wait()

    async def wait_output(self, text: str, *, count: int = 1) -> None:
        """Wait until ``text`` appears ``count`` times in the output (failing if the worker exits first)."""
        with anyio.fail_after(DEADLINE):
            while self.output().count(text) < count:
                assert self.popen.poll() is None, f"the worker exited ({self.popen.returncode}):\n{self.output()}"
                await anyio.sleep(0.02)

    async def wait_exit(self) -> int:
        """Wait for the process to end; its exit code."""
        with anyio.fail_after(DEADLINE):
            while self.popen.poll() is None:  # noqa: ASYNC110 - another process: no event to wait on
                await anyio.sleep(0.02)
        return self.popen.returncode

    async def wait_serving(self) -> None:
        await self.wait_output(" serving ")


class Workers:
    """Starts workers; ``close()`` kills and reaps every one still running."""

    def __init__(self, folder: Path, url: str) -> None:
        self.folder = folder
        self.url = url
        self.started: list[Worker] = []

    def start(self, *args: str, target: str = MODULE, cwd: Path = ROOT) -> Worker:
        """Start ``worker TARGET --store URL ARGS`` in ``cwd``."""
        log = self.folder / f"worker-{len(self.started)}.log"
        command = [sys.executable, "-m", "tasker_async", "worker", target, "--store", self.url, *args]
        with log.open("wb") as out:
            popen = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=cwd)
        worker = Worker(popen, log)
        self.started.append(worker)
        return worker

    def close(self) -> None:
        for worker in self.started:
            if worker.popen.poll() is None:
                worker.popen.kill()
            worker.popen.wait()


@contextmanager
def workers(folder: Path, url: str) -> Iterator[Workers]:
    """Worker processes that are killed and reaped however the block ends."""
    started = Workers(folder, url)
    try:
        yield started
    finally:
        started.close()


def cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """Run ``python -m tasker_async ARGS`` to its end."""
    return subprocess.run(
        [sys.executable, "-m", "tasker_async", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        check=False,
    )


def status_json(url: str) -> dict[str, Any]:
    """``status --json`` of the store at ``url``, parsed."""
    done = cli("status", "--store", url, "--json")
    assert done.returncode == 0, done.stderr
    document: dict[str, Any] = json.loads(done.stdout)
    return document


async def wait_until(condition: Callable[[], bool], *, timeout: float = DEADLINE) -> None:
    """Poll ``condition`` until it holds."""
    with anyio.fail_after(timeout):
        while not condition():  # noqa: ASYNC110 - files and processes: no event to wait on
            await anyio.sleep(0.02)


async def wait_for(condition: Callable[[], Awaitable[bool]], *, timeout: float = DEADLINE) -> None:
    """Poll an async ``condition`` until it holds."""
    with anyio.fail_after(timeout):
        while not await condition():  # noqa: ASYNC110 - a store's state has no event to wait on
            await anyio.sleep(0.02)
