"""What the dashboard's tests and screenshots put in a store: queued, failed and dead jobs, consumers, runs.

Everything goes through the public API: a ``Client`` submits; a real ``Consumer`` runs the tasks that fail
(so their errors carry real tracebacks); a job goes dead as it does in production, its only delivery taken by
a consumer that vanished (``claim`` without an outcome), its lease expiring, ``reclaim`` dead-lettering it.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import anyio

from tasker_async import AsyncManager, Config
from tasker_async.durable import Client, Consumer, ConsumerInfo, Registry, Store

DEADLINE = 10.0  # seconds any awaited condition may take

registry = Registry()


class ReportError(RuntimeError):
    """A report could not be built."""


@registry.task("mail.send", queue="mail")
async def send_mail(resource: object, to: str) -> str:
    return f"sent to {to}"


@registry.task("images.resize", queue="images", max_deliveries=1, lease=0.05)
async def resize(resource: object, name: str) -> str:
    return name


def _read_sales(day: str) -> dict[str, int]:
    ledger = {"2026-11-28": 1200, "2026-11-29": 1350}
    return {"total": ledger[day]}


@registry.task("reports.build", queue="reports")
async def build_report(resource: object, day: str) -> int:
    if day.startswith("bad"):
        raise ValueError(f"no such day: {day!r}")
    try:
        return _read_sales(day)["total"]
    except KeyError as missing:
        raise ReportError(f"no sales ledger for {day}") from missing


async def wait_for(condition: Callable[[], Awaitable[bool]], *, timeout: float = DEADLINE) -> None:
    """Poll an async ``condition`` until it holds."""
    with anyio.fail_after(timeout):
        while not await condition():  # noqa: ASYNC110 - another process's store: no event to wait on
            await anyio.sleep(0.02)


async def queued(client: Client, count: int, *, priority: bool = False, delay: float | None = None) -> list[str]:
    """Submit ``count`` mail jobs (nobody serves them in the tests: they stay queued); their ids."""
    ids = []
    for n in range(count):
        job = await client.submit(send_mail, f"user{n}@example.com", priority=priority, delay=delay)
        ids.append(job.id)
    return ids


async def dead(store: Store, client: Client, count: int) -> list[str]:
    """``count`` dead image jobs: each delivered once to a consumer that vanished; their ids."""
    ids = [(await client.submit(resize, f"photo-{n}.jpg")).id for n in range(count)]
    # Every ready job of the queue is taken (ours are among them); any other is given back, unstarted.
    claimed = await store.claim("vanished-consumer", ["images"], await store.backlog(["images"]))
    assert set(ids) <= {claim.id for claim in claimed}
    await store.release([claim.hold for claim in claimed if claim.id not in ids], started=False)

    async def all_dead() -> bool:
        await store.reclaim()
        infos = [await store.info(job_id) for job_id in ids]
        return all(info is not None and info.state == "dead" for info in infos)

    await wait_for(all_dead)
    return ids


@asynccontextmanager
async def consumer(
    store: Store, queues: list[str], *, workers: int = 2, reg: Registry = registry
) -> AsyncIterator[Consumer]:
    """A real consumer of ``reg`` on ``queues`` (stopped, its running jobs finished, on the way out)."""
    config = Config(on_create=lambda: "resource", worker_count=workers)
    async with AsyncManager(config) as manager, Consumer(store, reg, manager, queues=queues) as serving:
        yield serving


async def reports(store: Store, client: Client, days: list[str]) -> list[str]:
    """Run a report job per day on a real consumer until each has finished (failed or not); their ids."""
    ids = [(await client.submit(build_report, day)).id for day in days]
    async with consumer(store, ["reports"]):
        for job_id in ids:
            await store.wait(job_id, DEADLINE)
    return ids


async def heartbeat(store: Store, consumer_id: str, *, host: str, pid: int, capacity: int, running: int) -> None:
    """Record a heartbeat of a consumer (as a worker process on another machine would)."""
    now = time.time()
    info = ConsumerInfo(
        id=consumer_id,
        host=host,
        pid=pid,
        started_at=now - 3600,
        capacity=capacity,
        running=running,
        heartbeat_at=now,
        queues=("default", "mail"),
    )
    await store.renew(info, [])
