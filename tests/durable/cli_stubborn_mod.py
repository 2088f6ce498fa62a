"""A worker module whose task ignores its cancellation until the file ``release`` appears in its folder.

Run as ``python -m tasker_async worker tests.durable.cli_stubborn_mod``. With ``task_timeout`` set, the manager
gives up on such a run (its job fails) while the coroutine goes on: what the worker's exit must still bound.
"""

from __future__ import annotations

import os
from pathlib import Path

import anyio

from tasker_async import Config
from tasker_async.durable import Registry

from .cli_worker_mod import mark

registry = Registry()
config = Config(
    on_create=lambda: f"resource of {os.getpid()}",
    worker_count=1,
    max_worker_count=1,
    resource_pool_size=0,
    task_timeout=1.0,
    cancel_grace=0.2,
)


@registry.task("stubborn.spin", lease=1.0)
async def spin(resource: str, folder: str, tag: str) -> None:
    """Swallow every cancellation until ``release`` exists."""
    mark(folder, tag)
    release = Path(folder) / "release"
    while not release.exists():
        try:
            await anyio.sleep(0.02)
        except anyio.get_cancelled_exc_class():  # swallowed: the point of this task
            mark(folder, f"{tag}-cancelled")
