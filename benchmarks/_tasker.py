"""tasker_async as the benchmarks drive it: 8 fixed workers, no side pool, every other setting default."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from tasker_async import AsyncManager, Config

from ._common import WORKERS, Pool


@asynccontextmanager
async def open_tasker() -> AsyncIterator[Pool]:
    """Start a manager whose resources are the integers 0..7; stop it gracefully on the way out."""
    ids = itertools.count()
    config = Config(on_create=lambda: next(ids), worker_count=WORKERS, max_worker_count=WORKERS, resource_pool_size=0)
    async with AsyncManager(config) as manager:
        yield Pool(submit=manager.submit_nowait, call=manager.queue_task)
