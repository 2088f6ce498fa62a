"""Worker processes: started from the repository's root in a session of their own, stopped with SIGTERM."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TypeVar

import anyio
from anyio.abc import Process

__all__ = ("ROOT", "WorkerDied", "first", "progress", "tail", "watched", "worker_process")

ROOT = Path(__file__).resolve().parent.parent.parent
STOP_LIMIT = 20.0  # seconds a worker may take to leave after SIGTERM before its group is killed

T = TypeVar("T")


class WorkerDied(RuntimeError):
    """The worker process exited while the producer still needed it."""


def tail(log: Path, size: int = 3000) -> str:
    """The end of a worker's log, to say why it failed."""
    try:
        return log.read_text(errors="replace")[-size:]
    except OSError:
        return ""


@asynccontextmanager
async def worker_process(argv: list[str], log: Path) -> AsyncIterator[Process]:
    """The worker ``argv``, its output in ``log``; SIGTERM on the way out, then SIGKILL of its group.

    It runs in a session (and process group) of its own, so a worker that forks children of its own
    (taskiq's process manager does) leaves none behind.
    """
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    with log.open("ab") as out:
        process = await anyio.open_process(
            argv, cwd=ROOT, env=env, stdin=None, stdout=out, stderr=out, start_new_session=True
        )
    try:
        yield process
    finally:
        with anyio.CancelScope(shield=True):
            await _stop(process)


async def _stop(process: Process) -> None:
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
        with anyio.move_on_after(STOP_LIMIT):
            await process.wait()
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)  # what is left of its group (the group is the worker's pid)
    if process.returncode is None:
        await process.wait()
    await process.aclose()


async def watched(process: Process, work: Awaitable[T], *, limit: float, what: str, log: Path) -> T:
    """``await work``, failing at once if ``process`` exits first, or after ``limit`` seconds."""
    box: list[T] = []

    async def run() -> None:
        box.append(await work)
        group.cancel_scope.cancel()

    async def watch() -> None:
        await process.wait()
        raise WorkerDied(f"the worker exited with {process.returncode} during {what}:\n{tail(log)}")

    try:
        with anyio.fail_after(limit):
            async with anyio.create_task_group() as group:
                group.start_soon(watch)
                group.start_soon(run)
    except TimeoutError:
        raise TimeoutError(f"{what} took more than {limit:g} s; the worker's log:\n{tail(log)}") from None
    except BaseExceptionGroup as errors:
        raise first(errors) from errors
    if not box:
        raise RuntimeError(f"{what} ended without a result")
    return box[0]


def first(errors: BaseExceptionGroup[BaseException]) -> BaseException:
    """The first error a task group wraps (unwrapped from nested groups)."""
    error = errors.exceptions[0]
    return first(error) if isinstance(error, BaseExceptionGroup) else error


def progress(line: str) -> None:
    """A progress line on stderr (the report goes to stdout)."""
    print(line, file=sys.stderr, flush=True)
