"""Workflow runs on RedisStore: its Lua port of the run-state machine decides exactly as the memory store's Python.

Random DAGs (seeded) are driven through both stores with the same sequence of job outcomes, given backs,
cancels, run cancels and resumes; after every action both runs must look the same (states, attempts, items,
errors), every released job's payload must be the same bytes, and the results the same at the end.
"""

from __future__ import annotations

import dataclasses
import random
import uuid
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest

from tasker_async.durable import ErrorInfo, MemoryStore, RedisStore, RunInfo, Store
from tasker_async.durable._model.workflow.payload import StepCall
from tasker_async.durable._stores.records import Claim, NewRun, Outcome, StepPlan

from ._doubles import eventually
from .servers.redis_server import RedisServer

Key = tuple[str, int | None]  # a step job by its step and item: at most one is live at a time


@pytest.fixture
async def redis_store(redis_server: RedisServer) -> AsyncIterator[RedisStore]:
    async with RedisStore(redis_server.url, prefix=f"runs-{uuid.uuid4().hex[:12]}") as store:
        yield store


def random_plans(rng: random.Random, queue: str) -> tuple[StepPlan, ...]:
    """Up to 7 steps, each on a random set of earlier ones, a third of those with parents mapped over one.

    Defined in a random order: a step may name parents defined after it.
    """
    plans: list[StepPlan] = []
    for index in range(rng.randint(1, 7)):
        earlier = [plan.name for plan in plans]
        parents = tuple(rng.sample(earlier, rng.randint(0, min(3, len(earlier)))))
        map_over = rng.choice(parents) if parents and rng.random() < 0.35 else None
        plans.append(
            StepPlan(
                name=f"s{index}",
                parents=parents,
                map_over=map_over,
                task=f"flow.s{index}",
                queue=queue,
                priority=rng.random() < 0.2,
                max_deliveries=2,
            )
        )
    rng.shuffle(plans)
    return tuple(plans)


def view(info: RunInfo | None) -> Any:
    """What both stores must agree on (times differ: only whether each is known)."""
    assert info is not None
    steps = {
        name: (step.state, step.attempts, step.items, step.error, step.started_at is None, step.finished_at is None)
        for name, step in info.steps.items()
    }
    return info.state, info.workflow, info.key, steps, info.finished_at is None


class Pair:
    """The same run on a MemoryStore and a RedisStore, driven alike."""

    def __init__(self, memory: MemoryStore, redis: RedisStore, run: NewRun, rng: random.Random) -> None:
        self.stores: tuple[Store, Store] = (memory, redis)
        self.run, self.rng = run, rng
        self.plans = {plan.name: plan for plan in run.steps}
        self.queue = run.steps[0].queue
        self.held: dict[Key, tuple[Claim, Claim]] = {}
        self.resumes = 0

    async def check(self) -> None:
        memory, redis = [await store.run_info(self.run.id) for store in self.stores]
        assert view(redis) == view(memory)

    async def claim(self) -> None:
        taken = [await store.claim("c", [self.queue], 1000) for store in self.stores]
        keyed = [{(StepCall.unpack(c.payload).step, StepCall.unpack(c.payload).item): c for c in cs} for cs in taken]
        assert keyed[0].keys() == keyed[1].keys()
        for key, claim in keyed[0].items():
            assert keyed[1][key].payload == claim.payload  # the Lua builds StepCall.pack's bytes
            mine, theirs = keyed[1][key], claim
            assert (mine.name, mine.deliveries, mine.priority, mine.max_deliveries, mine.lease) == (
                theirs.name,
                theirs.deliveries,
                theirs.priority,
                theirs.max_deliveries,
                theirs.lease,
            )
            assert key not in self.held
            self.held[key] = (claim, keyed[1][key])

    def maps_over(self, step: str) -> bool:
        return any(plan.map_over == step for plan in self.plans.values())

    def outcome(self, key: Key, claim: Claim) -> Outcome:
        step, item = key
        roll = self.rng.random()
        if roll < 0.55:
            parts = None
            if self.plans[step].map_over is None and (self.maps_over(step) or self.rng.random() < 0.1):
                parts = tuple(b"p-%s-%d" % (step.encode(), i) for i in range(self.rng.choice([0, 1, 2, 3])))
            if self.rng.random() < 0.05:
                parts = None  # not a list: the step fails if some step maps over it
            return Outcome(lease=claim.hold, state="succeeded", result=b"r-%s-%r" % (step.encode(), item), parts=parts)
        if roll < 0.75:
            error = ErrorInfo("m.Boom", f"boom in {step}", "tb") if self.rng.random() < 0.8 else None
            return Outcome(lease=claim.hold, state="failed", error=error)
        return Outcome(lease=claim.hold, state=self.rng.choice(["dead", "cancelled"]))

    async def act(self) -> None:
        """One action on a held job (an outcome, a give back, a cancel) or on the run; both stores alike."""
        roll = self.rng.random()
        if roll < 0.06:
            assert await self.both("cancel_run", self.run.id) in ((True, True), (False, False))
            return
        if roll < 0.1 and self.resumes < 3:
            # Perhaps while items of a failed mapped step still run; refused alike when the run is not failed.
            self.resumes += 1
            assert await self.both("resume_run", self.run.id) in ((True, True), (False, False))
            return
        if not self.held:
            return
        key = self.rng.choice(sorted(self.held, key=repr))
        claims = self.held.pop(key)
        if roll < 0.7:
            outcome = self.outcome(key, claims[0])
            recorded = [
                await store.complete([dataclasses.replace(outcome, lease=claim.hold)])
                for store, claim in zip(self.stores, claims, strict=True)
            ]
            assert recorded == [[True], [True]]
        elif roll < 0.82:
            await self.give_back(claims, started=True)
        elif roll < 0.9:
            await self.give_back(claims, started=False)
        elif roll < 0.95:
            # Asked to be cancelled while running, then given back (started or not): it ends cancelled.
            assert await self.both("cancel", *(claim.id for claim in claims)) == (True, True)
            await self.give_back(claims, started=self.rng.random() < 0.5)
        else:
            # Given back (queued again), then cancelled in the queue; unless a run cancel had asked it to stop,
            # and the give back ended it.
            await self.give_back(claims, started=False)
            assert await self.both("cancel", *(claim.id for claim in claims)) in ((True, True), (False, False))

    async def give_back(self, claims: tuple[Claim, Claim], *, started: bool) -> None:
        for store, claim in zip(self.stores, claims, strict=True):
            await store.release([claim.hold], started=started)

    async def both(self, name: str, *args: Any) -> tuple[Any, Any]:
        """Call ``name`` on both stores: one argument for both, or one for each."""
        per_store = args if len(args) == 2 else args * 2
        memory, redis = self.stores
        return await getattr(memory, name)(per_store[0]), await getattr(redis, name)(per_store[1])

    async def settle(self) -> bool:
        """Resume a failed run now and then; False once nothing is left to do."""
        memory_info = await self.stores[0].run_info(self.run.id)
        assert memory_info is not None
        if memory_info.state == "failed" and self.resumes < 3 and self.rng.random() < 0.7:
            self.resumes += 1
            assert await self.both("resume_run", self.run.id) == (True, True)
            return True
        return False


async def drive(memory: MemoryStore, redis: RedisStore, seed: int) -> None:
    rng = random.Random(seed)
    # A queue per run: what one run leaves queued on the shared Redis store is no other run's.
    steps, ttl = random_plans(rng, f"q{seed}"), rng.choice([0.0, 3600.0])
    run = NewRun(id=uuid.uuid4().hex, workflow="flow", inputs=b'{"x": 1}', steps=steps, key=f"k{seed}", result_ttl=ttl)
    pair = Pair(memory, redis, run, rng)
    assert await pair.both("start_run", run) == (run.id, run.id)
    await pair.check()
    for _ in range(200):
        await pair.claim()
        if not pair.held and not await pair.settle():
            break
        await pair.act()
        await pair.check()
    info = await memory.run_info(run.id)
    assert info is not None
    if info.state == "running":
        assert pair.held  # only a run cut off by the round limit may still be running
    else:
        outputs = [await store.run_output(run.id, 0) for store in pair.stores]
        assert outputs[1].results == outputs[0].results
    if info.state != "failed":
        # A resume of a run that is not failed does nothing on both.
        assert await pair.both("resume_run", run.id) == (False, False)
    # A purge deletes a succeeded or cancelled run past its result_ttl on both, and its key with it.
    await memory.purge()
    await redis.purge()
    assert [await store.run_info(run.id) is None for store in pair.stores] == [info.state != "failed" and ttl == 0] * 2
    again = dataclasses.replace(run, id=uuid.uuid4().hex)
    assert await pair.both("start_run", again) in ((run.id, run.id), (again.id, again.id))
    assert [(e.kind, e.run_id) for e in redis.take_run_events()] == [
        (e.kind, e.run_id) for e in memory.take_run_events()
    ]


@pytest.mark.parametrize("group", range(6))
async def test_random_runs_end_the_same_on_redis_as_on_the_memory_store(redis_store: RedisStore, group: int) -> None:
    for seed in range(group * 10, group * 10 + 10):
        await drive(MemoryStore(), redis_store, seed)


def chain(*, lease: float = 30.0, max_deliveries: int = 2, result_ttl: float = 86400.0) -> tuple[StepPlan, ...]:
    """first -> second."""
    first = StepPlan(name="first", task="flow.first", queue="q", lease=lease, max_deliveries=max_deliveries)
    second = StepPlan(name="second", parents=("first",), task="flow.second", queue="q", result_ttl=result_ttl)
    return first, second


def new_run(steps: tuple[StepPlan, ...], **options: Any) -> NewRun:
    return NewRun(id=uuid.uuid4().hex, workflow="flow", inputs=b"{}", steps=steps, **options)


async def test_a_run_end_and_a_released_step_wake_the_waiters_of_another_store_object(
    redis_server: RedisServer,
) -> None:
    prefix, run = f"wake-{uuid.uuid4().hex[:12]}", new_run(chain())
    found: list[Any] = []
    async with (
        RedisStore(redis_server.url, prefix=prefix) as store,
        RedisStore(redis_server.url, prefix=prefix) as other,
    ):
        await store.start_run(run)
        (first,) = await store.claim("c", ["q"], 10)
        waiters = other._require_watch().waiters
        # Well within the waiters' safety-net look (5 s): only the published messages can wake them in time.
        with anyio.fail_after(3):
            async with anyio.create_task_group() as tg:

                async def wait_for_the_output() -> None:
                    found.append(await other.run_output(run.id, 10))

                tg.start_soon(wait_for_the_output)
                async with anyio.create_task_group() as ready:
                    ready.start_soon(other.wait_ready, ["q"], 10)
                    # Both registered: a message from now on wakes them.
                    await eventually(lambda: "job_waiters=1, ready_waiters=1" in repr(waiters), "both waiting")
                    await store.complete([Outcome(lease=first.hold, state="succeeded", result=b"1")])
                (second,) = await store.claim("c", ["q"], 10)
                assert StepCall.unpack(second.payload).parents == {"first": b"1"}
                await store.complete([Outcome(lease=second.hold, state="succeeded", result=b"2")])
    assert found[0].info.state == "succeeded"
    assert found[0].results == {"first": b"1", "second": b"2"}


async def test_an_expired_step_job_goes_dead_into_its_run_and_only_a_resume_runs_it_again(
    redis_store: RedisStore,
) -> None:
    run = new_run(chain(lease=0.2, max_deliveries=1))
    await redis_store.start_run(run)
    (first,) = await redis_store.claim("c", ["q"], 10)
    reclaimed: list[int] = []

    async def taken_back() -> bool:
        reclaimed.append(await redis_store.reclaim())
        return sum(reclaimed) > 0

    await eventually(taken_back, "the expired job taken back", timeout=5)
    info = await redis_store.run_info(run.id)
    assert info is not None
    assert (info.state, info.steps["first"].state, info.steps["second"].state) == (
        "failed",
        "failed",
        "upstream_failed",
    )
    assert info.steps["first"].error == ErrorInfo(
        "tasker_async.durable._model.errors.DeadLetterError", "delivered once without an outcome"
    )
    dead = await redis_store.info(first.id)
    assert dead is not None
    assert dead.state == "dead"
    assert await redis_store.requeue_dead(first.id) is False
    assert await redis_store.resume_run(run.id) is True
    (again,) = await redis_store.claim("c", ["q"], 10)
    assert StepCall.unpack(again.payload).step == "first"
    assert again.id != first.id
    info = await redis_store.run_info(run.id)
    assert info is not None
    assert (info.state, info.steps["first"].state, info.steps["first"].attempts) == ("running", "running", 2)


async def test_a_key_dedups_starts_until_its_finished_run_outlives_its_result_ttl(redis_store: RedisStore) -> None:
    steps = (StepPlan(name="only", task="flow.only", queue="q"),)
    first = new_run(steps, key="k", result_ttl=0.3)
    assert await redis_store.start_run(first) == first.id
    assert await redis_store.start_run(new_run(steps, key="k")) == first.id
    assert await redis_store.start_run(first) == first.id  # a retried start stores nothing twice
    (job,) = await redis_store.claim("c", ["q"], 10)
    await redis_store.complete([Outcome(lease=job.hold, state="succeeded", result=b"1")])
    assert await redis_store.start_run(new_run(steps, key="k")) == first.id
    later = new_run(steps, key="k")

    async def started() -> bool:
        return await redis_store.start_run(later) == later.id

    await eventually(started, "a new run under the key", timeout=5)
    assert [job.id for job in await redis_store.claim("c", ["q"], 10)] != []
    assert [event.kind for event in redis_store.take_run_events()] == ["started", "succeeded", "started"]


async def test_cancelling_a_queued_step_job_fails_its_step_and_an_unknown_run_is_told(redis_store: RedisStore) -> None:
    run = new_run(chain())
    await redis_store.start_run(run)
    (first,) = await redis_store.claim("c", ["q"], 10)
    await redis_store.release([first.hold], started=False)
    assert await redis_store.cancel(first.id) is True
    output = await redis_store.run_output(run.id, 0)
    assert output.info.state == "failed"
    assert output.info.steps["first"].error == ErrorInfo(
        "tasker_async.durable._model.errors.JobCancelledError", "the job of step 'first' was cancelled"
    )
    assert await redis_store.cancel_run(run.id) is False
    assert await redis_store.run_info("nope") is None
    assert await redis_store.cancel_run("nope") is False
    with pytest.raises(LookupError, match="nope"):
        await redis_store.resume_run("nope")
    with pytest.raises(LookupError, match="nope"):
        await redis_store.run_output("nope", 1)
