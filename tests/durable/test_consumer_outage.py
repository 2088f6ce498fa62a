"""Engine outage (§11.3.13): the consumer keeps its runs, retries, records once the engine is back, loses nothing."""

from __future__ import annotations

import logging
import time

import pytest

from tasker_async.durable import Client, Store, StoreUnavailableError

from ._doubles import Lab, OutageStore, eventually, serving


async def test_a_run_that_ends_during_an_outage_is_recorded_once_the_engine_is_back(store: Store) -> None:
    # The outage is far shorter than the lease: the consumer still holds the job when the engine returns.
    lab = Lab(lease=3.0)
    cut = OutageStore(store)
    async with Client(store) as client, serving(cut, lab) as node:
        running = await client.submit(lab.hold, "running")
        await eventually(lambda: lab.starts("running") == 1, "started")
        queued = await client.submit(lab.echo, "queued")  # waits for the one worker
        cut.down = True
        went_down = time.monotonic()
        await eventually(lambda: cut.failed["renew"] >= 1, "a renewal failing")
        assert lab.cancelled == []  # the consumer keeps its run
        lab.open("running")
        # The run ends while the engine is down; the consumer tries to record it, and tries again.
        await eventually(lambda: cut.failed["complete"] >= 2, "recording retried during the outage")
        assert lab.finished == ["running"]
        assert node.manager.stats().state == "running"
        down_for = time.monotonic() - went_down
        failed_calls = sum(cut.failed.values())
        cut.down = False
        assert await running.result(timeout=10) == "running"
        assert await queued.result(timeout=10) == "queued"
        infos = [await running.info(), await queued.info()]
    assert [(info.state, info.deliveries) for info in infos] == [("succeeded", 1), ("succeeded", 1)]
    assert lab.order == ["running", "queued"]
    # Retries back off: a consumer spinning on a dead engine would make many thousands of calls a second.
    assert failed_calls <= 20 + 1000 * down_for, f"{failed_calls} failed calls in {down_for:.3f} s"


async def test_submit_raises_store_unavailable_after_submit_timeout_and_stores_nothing(store: Store) -> None:
    lab = Lab()
    cut = OutageStore(store)
    cut.down = True
    async with Client(cut, submit_timeout=0.3) as client:
        began = time.monotonic()
        with pytest.raises(StoreUnavailableError):
            await client.submit(lab.echo, 1)
        took = time.monotonic() - began
    assert 0.3 <= took < 2.0, f"gave up after {took:.3f} s"
    assert cut.failed["enqueue"] >= 2  # it retried before giving up
    stats = await store.stats("default")
    assert (stats.ready_main, stats.ready_priority, stats.running) == (0, 0, 0)


@pytest.mark.parametrize("kit", ["memory"], indirect=True)
async def test_the_log_tells_an_outage_and_its_end_at_warning_level(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    # A worker logs at WARNING: the end of an outage must show where its start did.
    caplog.set_level(logging.WARNING, logger="tasker_async.durable")
    cut = OutageStore(store)
    async with serving(cut, Lab()):
        cut.down = True
        await eventually(lambda: cut.failed["renew"] >= 1, "a renewal failing")
        cut.down = False
        await eventually(lambda: "renewing leases works again" in caplog.text, "the recovery logged")
    assert "renewing leases failed, retrying" in caplog.text
