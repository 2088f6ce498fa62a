"""Cancel requests told to the consumer holding the job (``Store.wait_cancel_request``): it renews at once.

Memory, Redis and PostgreSQL tell the holder (Redis by a message on ``<prefix>:cancel``, PostgreSQL by a
``NOTIFY`` on ``<schema>_cancel``); SQLite waits out the time, and the holder learns at its next lease tick.
Either way the flag ``renew`` reads decides.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from tasker_async.durable import Client, JobCancelledError, Store, StoreUnavailableError
from tasker_async.durable._consumer import plan
from tasker_async.durable._stores.cancel_requests import CancelRequests
from tasker_async.durable._stores.records import NewRun, StepPlan

from ._doubles import Lab, OutageStore, eventually, serving
from .conftest import _kit
from .test_store_protocol import claim_one, consumer_info, new_job

PUSHING = ("memory", "redis", "postgres")  # the stores that tell a job's holder of a cancel request


@pytest.fixture(params=PUSHING)
async def pushing(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    """An entered store that tells holders of cancel requests, on fresh data."""
    async with _kit(request.param, tmp_path, request).open() as opened:
        yield opened


async def _asked(store: Store, consumer: str, *, within: float = 5.0) -> bool:
    with anyio.fail_after(within):
        return await store.wait_cancel_request(consumer, within * 2)


async def _cancel_a_run(client: Client, lab: Lab) -> None:
    """Submit a run that holds until cancelled, cancel it once started; it ends cancelled within 5 s."""
    job = await client.submit(lab.hold, "c")
    await eventually(lambda: lab.starts("c") == 1, "started")
    assert await job.cancel() is True
    with anyio.fail_after(5), pytest.raises(JobCancelledError):
        await job.result()
    assert lab.cancelled == ["c"]


# -- every store


async def test_a_wait_without_a_request_returns_false_after_its_timeout(store: Store) -> None:
    await store.enqueue(new_job())
    await claim_one(store, "c1")
    with anyio.fail_after(5):
        assert await store.wait_cancel_request("c1", 0.05) is False


# -- the stores that tell


async def test_cancelling_a_running_job_tells_its_holder_and_no_other_consumer(pushing: Store) -> None:
    store = pushing
    await store.enqueue(mine := new_job())
    await store.enqueue(theirs := new_job())
    await claim_one(store, "c1")
    await claim_one(store, "c2")
    for consumer in ("c1", "c2"):
        assert await store.wait_cancel_request(consumer, 0.0) is False  # each waits here from now on
    assert await store.cancel(theirs.id) is True
    assert await _asked(store, "c2") is True  # heard (for Redis: the message has come)
    assert await store.wait_cancel_request("c1", 0.0) is False  # and it was not c1's
    async with anyio.create_task_group() as group:
        told: list[bool] = []

        async def wait() -> None:
            told.append(await _asked(store, "c1"))

        group.start_soon(wait)
        assert await store.cancel(mine.id) is True
    assert told == [True]
    assert await store.wait_cancel_request("c1", 0.0) is False  # taken by the wait it woke


async def test_a_request_told_between_two_waits_is_kept_for_the_next(pushing: Store) -> None:
    store = pushing
    await store.enqueue(job := new_job())
    claim = await claim_one(store, "c1")
    assert await store.wait_cancel_request("c1", 0.0) is False
    assert await store.cancel(job.id) is True  # c1 is renewing, say: not waiting
    assert await _asked(store, "c1") is True
    assert (await store.renew(consumer_info("c1"), [claim.hold])).cancelled == {job.id}


async def test_a_queued_job_cancelled_tells_nobody(pushing: Store) -> None:
    store = pushing
    await store.enqueue(new_job())
    await claim_one(store, "c1")
    await store.enqueue(barrier := new_job())
    await claim_one(store, "c2")
    await store.enqueue(queued := new_job())
    for consumer in ("c1", "c2"):
        assert await store.wait_cancel_request(consumer, 0.0) is False
    assert await store.cancel(queued.id) is True
    # c2's request is told after anything the first cancel told: once c2 has heard, c1 would have too.
    assert await store.cancel(barrier.id) is True
    assert await _asked(store, "c2") is True
    assert await store.wait_cancel_request("c1", 0.0) is False


async def test_cancelling_a_run_tells_the_holder_of_its_running_step(pushing: Store) -> None:
    store = pushing
    step = StepPlan(name="only", task="flow.only", queue="q")
    await store.start_run(run := NewRun(id=uuid.uuid4().hex, workflow="flow", inputs=b"{}", steps=(step,)))
    (claim,) = await store.claim("c1", ["q"], 10)
    assert await store.wait_cancel_request("c1", 0.0) is False
    assert await store.cancel_run(run.id) is True
    assert await _asked(store, "c1") is True
    assert (await store.renew(consumer_info("c1"), [claim.hold])).cancelled == {claim.id}


async def test_a_cancel_reaches_a_consumers_run_long_before_its_next_lease_tick(
    pushing: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Ticks a third of the default 30 s lease apart (10 s): only the told request can end the run sooner.
    monkeypatch.setattr(plan, "MAX_TICK", 600.0)
    lab = Lab()
    async with Client(pushing) as client, serving(pushing, lab):
        await _cancel_a_run(client, lab)


class _Unheard(OutageStore):
    """A store whose word of cancel requests is cut off: each wait for one fails at once."""

    async def wait_cancel_request(self, consumer: str, timeout: float) -> bool:
        raise StoreUnavailableError("no word of cancel requests")


async def test_a_consumer_whose_store_cannot_tell_of_requests_cancels_at_its_lease_tick(store: Store) -> None:
    lab = Lab()
    async with Client(store) as client, serving(_Unheard(store), lab):
        await _cancel_a_run(client, lab)
        assert await (await client.submit(lab.echo, 1)).result(timeout=10) == 1  # it serves on


# -- the keeper of requests


async def test_requests_for_consumers_not_waiting_here_are_dropped_and_a_lost_listener_wakes_all() -> None:
    requests = CancelRequests()
    requests.told(["elsewhere"])
    assert "consumers=0" in repr(requests)
    assert await requests.wait("c1", 0.0) is False
    assert await requests.wait("c2", 0.0) is False
    requests.told_all()  # messages may have been lost: everyone waiting here renews
    with anyio.fail_after(5):
        assert await requests.wait("c1", 10.0) is True
        assert await requests.wait("c2", 10.0) is True
        assert await requests.wait("c1", 0.0) is False
    requests.forget("c2")  # it left: nothing more is kept for it
    assert "consumers=1" in repr(requests)
    requests.told(["c2"])
    assert "consumers=1" in repr(requests)
