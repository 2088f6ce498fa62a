"""The worker module of ``python -m tasker_async demo --durable``: one task on simulated connections.

The demo runs it in two worker processes::

    python -m tasker_async worker tasker_async._cli.demo_tasks --store sqlite:///...

Each run of ``demo.render`` that gets to its end appends one line to a completions file
named by the job, so the demo can tell a job that ran to completion twice from one that was
only started twice (its first run cut short by a crash).
"""

from __future__ import annotations

import asyncio
import itertools
import os
from dataclasses import dataclass

import anyio

from .. import Config
from ..durable import Registry

__all__ = ("LEASE", "Connection", "config", "registry", "render")

LEASE = 2.0  # short, so the jobs of a killed worker come back within seconds
CONNECT_SECONDS = 0.03

_ids = itertools.count(1)


@dataclass
class Connection:
    """A simulated connection; the id tells them apart."""

    id: int


async def connect() -> Connection:
    """``on_create``: a short simulated handshake."""
    await asyncio.sleep(CONNECT_SECONDS)
    return Connection(next(_ids))


registry = Registry()

# No burst workers: each process runs as many jobs at once as ``--concurrency`` says.
config = Config(on_create=connect, worker_count=3, max_worker_count=3, resource_pool_size=0)


@registry.task("demo.render", lease=LEASE)
async def render(connection: Connection, index: int, seconds: float, completions: str) -> dict[str, int]:
    """Work for ``seconds``, then note the completion of job ``index`` in the file ``completions``."""
    await asyncio.sleep(seconds)
    # One short append per completion: the lines of two processes never interleave.
    async with await anyio.open_file(completions, "a", encoding="utf-8") as file:
        await file.write(f"{index} {os.getpid()}\n")
    return {"index": index, "pid": os.getpid(), "connection": connection.id}
