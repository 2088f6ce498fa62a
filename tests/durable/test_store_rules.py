"""The pure rules every store applies: fates of jobs taken back, key reuse, purging, shown state, live consumers."""

from __future__ import annotations

import pytest

from tasker_async.durable import DeadLetterError, JobLostError
from tasker_async.durable._model.records import qualified_name
from tasker_async.durable._stores.protocol import CONSUMER_STALE_AFTER, LOST_MESSAGE
from tasker_async.durable._stores.rules import (
    Fate,
    expired_fate,
    fate_error,
    is_live,
    key_in_use,
    purgeable,
    unstarted_fate,
    visible_state,
)


@pytest.mark.parametrize(
    ("once", "deliveries", "max_deliveries", "cancel_requested", "fate"),
    [
        (False, 1, 5, False, "queued"),
        (False, 4, 5, False, "queued"),
        (False, 5, 5, False, "dead"),
        (False, 6, 5, False, "dead"),
        (True, 1, 5, False, "failed"),
        (True, 5, 5, False, "failed"),  # a once job is lost, not dead: it may have run
        (False, 5, 5, True, "cancelled"),
        (True, 1, 5, True, "cancelled"),  # the cancel request wins over everything
    ],
)
def test_expired_fate(once: bool, deliveries: int, max_deliveries: int, cancel_requested: bool, fate: Fate) -> None:
    assert (
        expired_fate(once=once, deliveries=deliveries, max_deliveries=max_deliveries, cancel_requested=cancel_requested)
        == fate
    )


def test_unstarted_fate() -> None:
    assert unstarted_fate(cancel_requested=False) == "queued"
    assert unstarted_fate(cancel_requested=True) == "cancelled"


def test_fate_errors() -> None:
    lost = fate_error("failed", 1)
    assert lost is not None
    assert (lost.type, lost.message) == (qualified_name(JobLostError), LOST_MESSAGE)
    dead = fate_error("dead", 3)
    assert dead is not None
    assert (dead.type, dead.message) == (qualified_name(DeadLetterError), "delivered 3 times without an outcome")
    once = fate_error("dead", 1)
    assert once is not None
    assert once.message == "delivered once without an outcome"
    assert fate_error("queued", 1) is None
    assert fate_error("cancelled", 1) is None


@pytest.mark.parametrize("state", ["queued", "delayed", "running", "dead"])
def test_a_key_of_an_unfinished_or_dead_job_is_in_use_for_ever(state: str) -> None:
    assert key_in_use(state, 0.0 if state == "dead" else None, 1.0, now=1e9)


@pytest.mark.parametrize("state", ["succeeded", "failed", "cancelled"])
def test_a_key_of_a_finished_job_is_in_use_within_its_ttl(state: str) -> None:
    assert key_in_use(state, 100.0, 10.0, now=109.9)
    assert not key_in_use(state, 100.0, 10.0, now=110.0)


@pytest.mark.parametrize("state", ["succeeded", "failed", "cancelled"])
def test_finished_jobs_are_purged_after_their_ttl(state: str) -> None:
    assert not purgeable(state, 100.0, 10.0, now=109.9)
    assert purgeable(state, 100.0, 10.0, now=110.0)


@pytest.mark.parametrize("state", ["queued", "running", "dead"])
def test_unfinished_and_dead_jobs_are_never_purged(state: str) -> None:
    assert not purgeable(state, 0.0 if state == "dead" else None, 0.0, now=1e9)


def test_visible_state() -> None:
    assert visible_state("queued", 10.0, now=9.0) == "delayed"
    assert visible_state("queued", 10.0, now=10.0) == "queued"
    assert visible_state("running", 10.0, now=9.0) == "running"
    assert visible_state("succeeded", 10.0, now=9.0) == "succeeded"


def test_is_live() -> None:
    assert is_live(100.0, now=100.0 + CONSUMER_STALE_AFTER - 0.1)
    assert not is_live(100.0, now=100.0 + CONSUMER_STALE_AFTER)
