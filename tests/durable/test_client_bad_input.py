"""Arguments the serializer refuses: a ``TypeError`` naming the parameter (or position), and nothing stored."""

from __future__ import annotations

import math
from datetime import date
from typing import Any

import pytest

from tasker_async.durable import Client, QueueStats, Registry, Store

registry = Registry()


class Page:
    """The resource the tasks take first."""


@registry.task("bad_input.render")
async def render(page: Page, report_id: int, label: str = "report") -> str:
    return f"{label} {report_id}"


@registry.task("bad_input.many")
async def many(page: Page, first: int, /, *rest: int) -> int:
    return first + sum(rest)


EMPTY = QueueStats(ready_priority=0, ready_main=0, delayed=0, running=0, dead=0)


async def assert_nothing_stored(client: Client, store: Store) -> None:
    assert await client.stats() == EMPTY
    assert await store.queue_names() == []


@pytest.mark.parametrize(
    ("args", "named"),
    [
        ((object(),), "parameter 'report_id'"),
        ((math.nan,), "parameter 'report_id'"),
        ((1, {1, 2}), "parameter 'label'"),
        ((1, date(2024, 1, 1)), "parameter 'label'"),
    ],
)
async def test_a_refused_argument_names_its_parameter(store: Store, args: tuple[Any, ...], named: str) -> None:
    async with Client(store) as client:
        with pytest.raises(TypeError, match=named) as caught:
            await client.submit(render, *args, key="bad", priority=True)
        assert "'bad_input.render'" in str(caught.value)
        await assert_nothing_stored(client, store)
        # The key was not taken by the refused job.
        job = await client.submit(render, 1, key="bad")
        assert (await job.info()).state == "queued"


async def test_a_refused_argument_past_the_named_parameters_names_its_position(store: Store) -> None:
    async with Client(store) as client:
        with pytest.raises(TypeError, match="parameter 'first'"):
            await client.submit(many, b"bytes", 2)
        with pytest.raises(TypeError, match=r"argument 3 of 'bad_input\.many'"):
            await client.submit(many, 1, 2, object())
        await assert_nothing_stored(client, store)


async def test_a_refused_argument_of_a_job_by_name_names_its_position(store: Store) -> None:
    async with Client(store) as client:
        with pytest.raises(TypeError, match=r"argument 2 of 'elsewhere\.task'"):
            await client.submit("elsewhere.task", 1, object(), delay=5)
        await assert_nothing_stored(client, store)


async def test_a_refused_argument_leaves_earlier_jobs_alone(store: Store) -> None:
    async with Client(store) as client:
        kept = await client.submit(render, 1)
        with pytest.raises(TypeError, match="report_id"):
            await client.submit(render, {1})
        stats = await client.stats()
        assert (stats.ready_main, stats.ready_priority, stats.delayed) == (1, 0, 0)
        assert [claim.id for claim in await store.claim("consumer-1", ["default"], 5)] == [kept.id]
