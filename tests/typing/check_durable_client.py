"""mypy --strict: a durable task's result type comes back through ``Client.submit`` and its ``Job``.

Checked by ``mypy --strict tests/typing`` (and ``tests/test_typing.py``), never run. Each
``# type: ignore[...]`` line is a use that must be rejected: warn_unused_ignores fails the
check if it is ever accepted.
"""

from __future__ import annotations

from typing import Any, assert_type

from tasker_async.durable import Client, Job, JobInfo, JSONSerializer, QueueStats, Registry, Store, open_store

registry = Registry()


class Page: ...


@registry.task("typing.render")
async def render(page: Page, report_id: int, label: str = "report") -> str:
    return label


@registry.task("typing.nothing", queue="other")
async def nothing(page: Page) -> None:
    return None


@registry.task("typing.rows")
async def rows(page: Page, *ids: int) -> list[dict[str, int]]:
    return []


async def check_submit_types_the_job() -> None:
    store = open_store("sqlite:///tasker.db")
    assert_type(store, Store)
    async with store, Client(store, submit_timeout=5.0) as client:
        assert_type(client, Client)
        job = await client.submit(render, 42)
        assert_type(job, Job[str])
        assert_type(job.id, str)
        assert_type(await job, str)
        assert_type(await job.result(), str)
        assert_type(await job.result(timeout=1.5), str)
        assert_type(await job.info(), JobInfo)
        assert_type(await job.cancel(), bool)
        assert_type(await client.submit(render, 42, "x", priority=True, key="k", delay=1.0, once=True), Job[str])
        assert_type(await client.submit(nothing), Job[None])
        assert_type(await (await client.submit(rows, 1, 2, 3)).result(), list[dict[str, int]])
        assert_type(await client.submit("typing.render", 42), Job[Any])
        assert_type(client.job("0123abcd"), Job[Any])
        assert_type(await client.stats(), QueueStats)
        assert_type(await client.stats("other"), QueueStats)
        assert_type(await client.requeue_dead("0123abcd"), bool)


async def check_wrong_uses_are_rejected() -> None:
    async with open_store("memory://") as store, Client(store) as client:
        await client.submit(render.fn, 1)  # type: ignore[call-overload]
        await client.submit(render, 1, priority=1)  # type: ignore[call-overload]
        await client.submit(render, 1, key=5)  # type: ignore[call-overload]
        await client.submit(render, 1, delay="soon")  # type: ignore[call-overload]
        await client.submit(render, 1, queue="other")  # type: ignore[call-overload]
        wrong: Job[int] = await client.submit(render, 1)  # type: ignore[arg-type]
        await client.stats(1)  # type: ignore[arg-type]
        client.job(1)  # type: ignore[arg-type]
        Client(store, 1.0)  # type: ignore[call-arg]
        open_store("memory://", JSONSerializer())  # type: ignore[call-arg]
        del wrong
