"""``python -m tasker_async dashboard`` as a subprocess: started on a free port, waited for, always reaped."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import anyio
import httpx

ROOT = Path(__file__).resolve().parent.parent.parent
DEADLINE = 10.0
SERVING = re.compile(r"dashboard serving (http://\S+/)")


class Dashboard:
    """One dashboard process; its output (both streams) goes to a file."""

    def __init__(self, popen: subprocess.Popen[bytes], log: Path) -> None:
        self.popen = popen
        self.log = log
        self.url = ""

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    async def ready(self) -> str:
        """Wait for the URL it prints, then for ``/health`` to answer 200; the URL."""
        with anyio.fail_after(DEADLINE):
            while not (found := SERVING.search(self.output())):
                assert self.popen.poll() is None, f"the dashboard exited ({self.popen.returncode}):\n{self.output()}"
                await anyio.sleep(0.02)
            self.url = found[1]
            async with httpx.AsyncClient() as http:
                while (await http.get(self.url + "health")).status_code != 200:  # noqa: ASYNC110 - polling a server
                    await anyio.sleep(0.02)
        return self.url

    async def stop(self, signum: signal.Signals = signal.SIGINT) -> int:
        """Send ``signum`` and wait for the process to end; its exit code."""
        self.popen.send_signal(signum)
        return await self.wait_exit()

    async def wait_exit(self) -> int:
        """Wait for the process to end; its exit code."""
        with anyio.fail_after(DEADLINE):
            while self.popen.poll() is None:  # noqa: ASYNC110 - another process: no event to wait on
                await anyio.sleep(0.02)
        return self.popen.returncode


@contextmanager
def dashboard(folder: Path, url: str, *args: str) -> Iterator[Dashboard]:
    """Start ``dashboard --store URL --port 0 ARGS``; killed and reaped however the block ends."""
    log = folder / f"dashboard-{len(list(folder.glob('dashboard-*.log')))}.log"
    command = [sys.executable, "-m", "tasker_async", "dashboard", "--store", url, "--port", "0", *args]
    with log.open("wb") as out:
        popen = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
    try:
        yield Dashboard(popen, log)
    finally:
        if popen.poll() is None:
            popen.kill()
        popen.wait()
