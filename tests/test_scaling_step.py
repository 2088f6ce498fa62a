"""Scale-up that reacts to a step in load: early decisions, proportional policies, and their rate limit."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from tasker_async import (
    AsyncManager,
    BacklogPolicy,
    RatePolicy,
    ScalingDecision,
    ScalingEvent,
    ScalingSnapshot,
)
from tasker_async._scaling.supervisor import EARLY_GAP, NEVER, wake_backlog

from .conftest import EventLog, Resource, scaling_snapshot, wait_for

Factory = Callable[..., AsyncManager[Resource]]

IDLE = scaling_snapshot(active_workers=4, base_workers=4, max_workers=32)


def snap(**changes: Any) -> ScalingSnapshot:
    return replace(IDLE, **changes)


# -- the policies, on snapshots ------------------------------------------------------


@pytest.mark.parametrize(
    ("seen", "add"),
    [
        # A step from idle: 20,000 arrived in the window, 4 running, nothing completed yet.
        (snap(queued=19_996, running=4, arrival_rate=20_000, arrivals_in_window=20_000), 28),
        # A small step: a worker per queued task...
        (snap(queued=3, running=4, arrival_rate=7, arrivals_in_window=7), 3),
        # ... less those already starting.
        (snap(queued=3, running=4, starting_workers=2, arrival_rate=7, arrivals_in_window=7), 1),
        (snap(queued=3, running=4, starting_workers=3, arrival_rate=7, arrivals_in_window=7), 0),
        # A known pace (4 workers at 100/s each, arrivals matched): the 1,000 queued need 10
        # workers to clear within a second; 6 more.
        (snap(queued=1_000, arrival_rate=400, completion_rate=400, arrivals_in_window=400), 6),
        # The same backlog clears within a second on 10 workers already there: hold.
        (snap(queued=1_000, active_workers=10, arrival_rate=1_000, completion_rate=1_000), 0),
        # Arrivals outpace completions by more than the backlog asks for: the rate term wins.
        (snap(queued=50, arrival_rate=2_000, completion_rate=400, arrivals_in_window=2_000), 16),
    ],
)
def test_rate_policy_meets_a_step_in_load(seen: ScalingSnapshot, add: int) -> None:
    decision = RatePolicy().decide(seen)
    assert (decision.add, decision.retire) == (add, 0)
    assert bool(decision.reason) == bool(add)


def test_rate_policy_clears_a_backlog_within_its_horizon() -> None:
    seen = snap(queued=1_000, arrival_rate=400, completion_rate=400, arrivals_in_window=400)
    assert RatePolicy(clear_within=1.0).decide(seen).add == 6
    assert RatePolicy(clear_within=2.5).decide(seen).add == 0  # 4 workers at 100/s clear it in 2.5 s
    assert "would take over 1 s to clear" in RatePolicy().decide(seen).reason
    with pytest.raises(ValueError, match="clear_within"):
        RatePolicy(clear_within=0)


@pytest.mark.parametrize(
    ("seen", "add"),
    [
        (snap(queued=10), 0),  # at the threshold: hold
        (snap(queued=11), 2),  # one threshold's worth: one step
        (snap(queued=25), 4),  # two: two steps
        (snap(queued=25, starting_workers=3), 1),  # less those starting
        (snap(queued=25, starting_workers=4), 0),
        (snap(queued=20_000), 28),  # a step in load: up to the ceiling at once
        (snap(queued=20_000, active_workers=31), 1),
    ],
)
def test_backlog_policy_adds_in_proportion_to_the_backlog(seen: ScalingSnapshot, add: int) -> None:
    decision = BacklogPolicy(threshold=10, step=2).decide(seen)
    assert (decision.add, decision.retire) == (add, 0)


def test_the_wake_up_backlog_follows_the_policy() -> None:
    assert wake_backlog(BacklogPolicy(threshold=7), worker_count=3) == 7
    assert wake_backlog(RatePolicy(), worker_count=3) == 3


# -- the supervisor woken by accept --------------------------------------------------


class Held:
    """Task bodies held until released."""

    def __init__(self) -> None:
        self.release = asyncio.Event()

    async def __call__(self, resource: Resource) -> None:
        await self.release.wait()


class Recorder:
    """A policy that records what it saw and asks for ``add`` workers while tasks are queued."""

    def __init__(self, add: int) -> None:
        self.add = add
        self.seen: list[ScalingSnapshot] = []
        self.decided = asyncio.Event()

    def decide(self, snapshot: ScalingSnapshot) -> ScalingDecision:
        self.seen.append(snapshot)
        self.decided.set()
        if snapshot.queued and self.add:
            return ScalingDecision(add=self.add, reason="queued")
        return ScalingDecision()

    async def decisions(self, count: int) -> None:
        while len(self.seen) < count:
            self.decided.clear()
            await self.decided.wait()


def step_manager(make_manager: Factory, watch: EventLog, **options: Any) -> AsyncManager[Resource]:
    # A tick far beyond the test's timeout: every decision seen here was an early one.
    options.setdefault("burst_interval", 60.0)
    return make_manager(hooks=[watch], **options)


async def test_a_backlog_wakes_the_supervisor_before_its_interval(make_manager: Factory) -> None:
    watch = EventLog()
    body = Held()
    async with step_manager(
        make_manager, watch, worker_count=2, max_worker_count=6, scaling_policy=BacklogPolicy(threshold=2)
    ) as manager:
        handles = [manager.submit_nowait(body) for _ in range(12)]
        await watch.until(lambda: bool(watch.of(ScalingEvent)))
        # 10 queued, 2 per threshold of 2: five steps, capped at the 4 slots left.
        assert [(e.kind, e.count) for e in watch.of(ScalingEvent)] == [("scale_up", 4)]
        body.release.set()
        await asyncio.gather(*handles)


async def test_the_rate_policy_reaches_the_ceiling_in_one_early_decision(make_manager: Factory) -> None:
    watch = EventLog()
    body = Held()
    async with step_manager(
        make_manager, watch, worker_count=2, max_worker_count=6, scaling_policy=RatePolicy()
    ) as manager:
        handles = [manager.submit_nowait(body) for _ in range(20)]
        await watch.until(lambda: manager.stats().active_workers == 6)
        assert [(e.kind, e.count) for e in watch.of(ScalingEvent)] == [("scale_up", 4)]
        body.release.set()
        await asyncio.gather(*handles)


async def test_no_early_decision_while_submissions_find_parked_workers(make_manager: Factory) -> None:
    watch = EventLog()
    body = Held()
    policy = Recorder(add=1)
    async with step_manager(make_manager, watch, worker_count=4, max_worker_count=6, scaling_policy=policy) as manager:
        # Each of these finds a parked worker: no wake-up, however fast they come.
        handles = [manager.submit_nowait(body) for _ in range(4)]
        await wait_for(lambda: manager.stats().running_tasks == 4)
        # Then a backlog of 4, the base worker count: still no wake-up. One more passes it.
        handles += [manager.submit_nowait(body) for _ in range(4)]
        await wait_for(lambda: manager.stats().queued_tasks == 4)
        handles.append(manager.submit_nowait(body))
        await policy.decisions(1)
        # The first decision the policy saw is the one the fifth queued task asked for.
        assert (policy.seen[0].queued, policy.seen[0].running) == (5, 4)
        body.release.set()
        await asyncio.gather(*handles)


async def test_early_decisions_are_rate_limited(make_manager: Factory) -> None:
    watch = EventLog()
    body = Held()
    policy = Recorder(add=1)
    async with step_manager(make_manager, watch, worker_count=1, max_worker_count=4, scaling_policy=policy) as manager:
        handles = [manager.submit_nowait(body) for _ in range(10)]
        # The backlog stays past the mark after each added worker: decisions follow one
        # another, each at least EARLY_GAP after the last, until the ceiling.
        await watch.until(lambda: manager.stats().active_workers == 4)
        times = [seen.now for seen in policy.seen]
        assert len(times) == 3
        assert all(later - earlier >= EARLY_GAP - 1e-9 for earlier, later in itertools.pairwise(times))
        body.release.set()
        await asyncio.gather(*handles)


async def test_an_early_decision_that_adds_nothing_is_not_repeated_before_the_tick(make_manager: Factory) -> None:
    watch = EventLog()
    body = Held()
    policy = Recorder(add=0)
    async with step_manager(make_manager, watch, worker_count=1, max_worker_count=4, scaling_policy=policy) as manager:
        rt = manager._rt
        handles = [manager.submit_nowait(body) for _ in range(5)]
        await policy.decisions(1)
        # The policy held: the mark stays down, and a further flood does not wake the supervisor.
        assert rt.ledger.scale_wake_at == NEVER
        handles += [manager.submit_nowait(body) for _ in range(50)]
        assert not rt.ledger.scale_wake.is_set()
        assert len(policy.seen) == 1
        body.release.set()
        await asyncio.gather(*handles)


async def test_an_early_decision_that_adds_workers_rearms_the_wake_up(make_manager: Factory) -> None:
    watch = EventLog()
    body = Held()
    policy = Recorder(add=1)
    async with step_manager(make_manager, watch, worker_count=1, max_worker_count=8, scaling_policy=policy) as manager:
        rt = manager._rt
        handles = [manager.submit_nowait(body) for _ in range(3)]
        await policy.decisions(1)
        # Two workers alive or starting, none delayed, a backlog of one base worker's count.
        assert rt.ledger.scale_wake_at == 2 + 0 + 1
        body.release.set()
        await asyncio.gather(*handles)
