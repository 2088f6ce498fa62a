"""A worker module for the CLI and crash tests: tasks that leave marks in a folder and wait for a file.

Run as ``python -m tasker_async worker tests.durable.cli_worker_mod`` from the repository root.
Every task that starts writes ``started-TAG-PID-N`` into the folder it is given, so a test sees
which process ran what, and how many times.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import anyio

from tasker_async import Config
from tasker_async.durable import Registry, Workflow

LEASE = 1.0
SHORT_LEASE = 0.5

_runs = itertools.count(1)


def make_resource() -> str:
    return f"resource of {os.getpid()}"


registry = Registry()
alt_registry = Registry()

# No burst workers: a consumer's capacity is exactly its workers.
config = Config(on_create=make_resource, worker_count=2, max_worker_count=2, resource_pool_size=0)


def mark(folder: str, tag: str) -> None:
    """Leave a mark of this run: the tag, the process, a count unique in the process."""
    (Path(folder) / f"started-{tag}-{os.getpid()}-{next(_runs)}").touch()


def marks(folder: Path, tag: str) -> list[int]:
    """The pids of the runs of ``tag`` that started, one entry per run."""
    return [int(path.name.split("-")[-2]) for path in folder.glob(f"started-{tag}-*")]


@registry.task("cli.echo", lease=LEASE)
async def echo(resource: str, value: object) -> object:
    return value


@registry.task("cli.hold", lease=LEASE)
async def hold(resource: str, folder: str, tag: str) -> int:
    """Run until the file ``release`` appears in ``folder``; return the pid."""
    mark(folder, tag)
    release = Path(folder) / "release"
    while not release.exists():  # noqa: ASYNC110 - a file another process writes
        await anyio.sleep(0.01)
    return os.getpid()


@registry.task("cli.sleep", lease=SHORT_LEASE)
async def sleep(resource: str, seconds: float, folder: str, tag: str) -> int:
    """Run ``seconds``; return the pid."""
    mark(folder, tag)
    await anyio.sleep(seconds)
    return os.getpid()


@registry.task("cli.elsewhere", queue="cli_elsewhere")
async def elsewhere(resource: str) -> None:
    """A task of a queue the tests' workers are not told to serve."""


@alt_registry.task("cli.alt", lease=LEASE)
async def alt(resource: str) -> str:
    return "from the other registry"


# A workflow whose first step waits for ``release`` as ``hold`` does: a worker killed there leaves it to another.
crash_flow = Workflow("cli.flow", lease=LEASE, max_deliveries=3)


@crash_flow.step()
async def begin(resource: str, *, folder: str) -> list[int]:
    mark(folder, "begin")
    release = Path(folder) / "release"
    while not release.exists():  # noqa: ASYNC110 - a file another process writes
        await anyio.sleep(0.01)
    return [1, 2, 3]


@crash_flow.step(depends_on=[begin], map_over=begin)
async def square(resource: str, *, begin: int, folder: str) -> int:
    mark(folder, f"square{begin}")
    return begin * begin


@crash_flow.step(depends_on=[square])
async def join(resource: str, *, square: list[int], folder: str) -> int:
    mark(folder, "join")
    return sum(square)


registry.add_workflow(crash_flow)
