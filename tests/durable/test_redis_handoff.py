"""RedisStore's hand-off: a job stored while a consumer waits is claimed for it as it is stored (``handoff.lua``)."""

from __future__ import annotations

import struct
import uuid
from collections.abc import AsyncIterator, Collection
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from tasker_async.durable import Client, RedisStore
from tasker_async.durable._stores.redis import claims as redis_claims
from tasker_async.durable._stores.redis import codec
from tasker_async.durable._stores.redis.handed import Handed

from ._doubles import Lab, eventually, in_state, serving
from .servers.redis_server import RedisServer
from .test_store_protocol import consumer_info, info_of, new_job, succeeded

pytestmark = pytest.mark.timeout(30)

QUEUES = ["default"]


class Calls:
    """Records the functions a store object calls, and the jobs its claims took from the queues."""

    def __init__(self, store: RedisStore) -> None:
        self.names: list[str] = []
        self.from_queues: list[str] = []
        self._run = store._run
        store._run = self._counted  # type: ignore[method-assign]

    async def _counted(self, name: str, *args: Any) -> Any:
        self.names.append(name)
        reply = await self._run(name, *args)
        # A claim's reply: (recorded,) collected, claimed, due; "claimed" holds the jobs taken from the queues.
        if name in ("claim", "complete_and_claim"):
            self.from_queues += [claim.id for claim in codec.claims(reply[-2])]
        return reply


@asynccontextmanager
async def _stores(redis_server: RedisServer) -> AsyncIterator[tuple[RedisStore, RedisStore]]:
    """A listening store object (the consumer's) and another on the same prefix (the submitter's)."""
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    async with (
        RedisStore(redis_server.url, prefix=prefix) as store,
        RedisStore(redis_server.url, prefix=prefix) as other,
    ):
        assert store._watch is not None
        with anyio.fail_after(10):
            await store._watch.subscribed.wait()
        yield store, other


async def _offer(store: RedisStore, limit: int = 4) -> None:
    """c1's claim comes up short, and c1 will wait: its offer stands.

    The first claim of a consumer that waits subscribes its channel; it offers once the server confirmed it.
    """
    assert store._watch is not None
    watch = store._watch
    with anyio.fail_after(10):
        while not watch.hears_handed("c1"):  # noqa: ASYNC110 - the listener's task hears the confirmation
            await anyio.sleep(0.005)
    assert await store.claim("c1", QUEUES, limit, waits=True) == []
    assert store._handed.involved("c1")


async def _handed_here(store: RedisStore, other: RedisStore, **fields: Any) -> str:
    """Store a job through ``other`` while c1 waits; return once c1's wait was woken by its hand-off."""
    with anyio.fail_after(10):
        async with anyio.create_task_group() as group:
            group.start_soon(store.wait_ready, QUEUES, 60.0)
            await anyio.wait_all_tasks_blocked()
            job_id = await other.enqueue(new_job(**fields))
    assert store._handed.kept("c1") == 1
    return job_id


def _drop_messages(store: RedisStore) -> None:
    """The listener hears no ``handed`` message from now on, as if each were lost."""
    assert store._watch is not None
    store._watch.handed = Handed()  # knows no consumer: ignores every message


async def test_a_job_stored_while_a_consumer_waits_is_its_next_claim_with_no_round_trip(
    redis_server: RedisServer,
) -> None:
    async with _stores(redis_server) as (store, other):
        await _offer(store)
        job_id = await _handed_here(store, other)
        assert (await info_of(other, job_id)).state == "running"  # claimed as it was stored
        calls = Calls(store)
        claims = await store.claim("c1", QUEUES, 4, waits=True)
        assert [(claim.id, claim.deliveries) for claim in claims] == [(job_id, 1)]
        assert calls.names == []
        assert await store.claim("c1", QUEUES, 4, waits=True) == []  # delivered once
        info = await info_of(other, job_id)
        assert (info.state, info.consumer, info.deliveries) == ("running", "c1", 1)


async def test_only_the_store_object_of_a_waiting_consumer_hears_of_its_jobs(redis_server: RedisServer) -> None:
    async with _stores(redis_server) as (store, producer):
        assert store._client is not None
        assert producer._watch is not None
        await producer._watch.subscribed.wait()  # listening too, on the channels every store object hears
        client, pattern = store._client, f"{store._prefix}:handed-to:*"
        assert await store.claim("c1", QUEUES, 4) == []  # a consumer that will not wait listens for nothing
        assert await client.pubsub_channels(pattern) == []
        await _offer(store)
        assert await client.pubsub_channels(pattern) == [f"{store._prefix}:handed-to:c1".encode()]
        assert (await client.pubsub_numsub(f"{store._prefix}:handed-to:c1"))[0][1] == 1  # not the producer's
        await store.leave("c1")
        await eventually(lambda: _no_channels(client, pattern), "the channel left")


async def _no_channels(client: Any, pattern: str) -> bool:
    channels: list[bytes] = await client.pubsub_channels(pattern)
    return channels == []


async def test_a_job_handed_to_one_consumer_is_no_other_consumers(redis_server: RedisServer) -> None:
    async with _stores(redis_server) as (store, other):
        await _offer(store)
        await _handed_here(store, other)
        assert await other.claim("c2", QUEUES, 4) == []
        assert await store.claim("c3", QUEUES, 4, waits=True) == []  # another consumer of the same object


async def test_a_consumer_hands_on_no_more_jobs_than_it_offered(redis_server: RedisServer) -> None:
    async with _stores(redis_server) as (store, other):
        await _offer(store, limit=1)
        handed = await _handed_here(store, other)
        second = await other.enqueue(new_job())
        assert (await info_of(other, second)).state == "queued"  # the offer was used up
        assert [claim.id for claim in await store.claim("c1", QUEUES, 1, waits=True)] == [handed]


async def test_a_claim_without_a_limit_or_a_wait_withdraws_the_offer(redis_server: RedisServer) -> None:
    async with _stores(redis_server) as (store, other):
        await _offer(store)
        assert await store.claim("c1", QUEUES, 0) == []
        job_id = await other.enqueue(new_job())
        assert (await info_of(other, job_id)).state == "queued"
        assert [claim.id for claim in await other.claim("c2", QUEUES, 4)] == [job_id]


async def test_a_claim_that_will_not_wait_leaves_no_offer(redis_server: RedisServer) -> None:
    async with _stores(redis_server) as (store, other):
        assert await store.claim("c1", QUEUES, 4) == []
        job_id = await other.enqueue(new_job())
        assert (await info_of(other, job_id)).state == "queued"


async def test_a_withdrawal_returns_the_jobs_handed_meanwhile(redis_server: RedisServer) -> None:
    async with _stores(redis_server) as (store, other):
        await _offer(store)
        job_id = await _handed_here(store, other)
        assert [claim.id for claim in await store.claim("c1", QUEUES, 0)] == [job_id]
        assert not store._handed.involved("c1")


async def test_a_job_whose_message_was_lost_is_collected_by_the_next_claim_once(redis_server: RedisServer) -> None:
    async with _stores(redis_server) as (store, other):
        await _offer(store)
        _drop_messages(store)
        job_id = await other.enqueue(new_job())
        assert (await info_of(other, job_id)).state == "running"  # handed, and its message never heard
        claims = await store.claim("c1", QUEUES, 4, waits=True)
        assert [(claim.id, claim.deliveries) for claim in claims] == [(job_id, 1)]
        assert await store.claim("c1", QUEUES, 4, waits=True) == []


async def test_a_job_heard_of_is_left_out_of_the_next_claims_reply(redis_server: RedisServer) -> None:
    async with _stores(redis_server) as (store, other):
        await _offer(store)
        job_id = await _handed_here(store, other)
        ready = await other.enqueue(new_job())  # the offer stands: handed too
        await eventually(lambda: store._handed.kept("c1") == 2, "the second job heard of")
        # A claim that goes to the server (it will not wait) returns each job once: the server leaves out those
        # heard of, which come from here.
        calls = Calls(store)
        claims = await store.claim("c1", QUEUES, 4)
        assert calls.names == ["claim"]
        assert sorted(claim.id for claim in claims) == sorted([job_id, ready])


def _message(consumer: str, rows: Collection[tuple[str, str]]) -> bytes:
    """A ``handed`` message for ``consumer`` with a claim row per (id, token), as ``handoff.lua`` frames it."""
    body = b""
    for job_id, token in rows:
        for value in (job_id, "t", "default", "[]", "0", "0", "1", "5", "30", token):
            body += struct.pack("<I", len(value)) + value.encode()
    return consumer.encode() + b"\n" + body


def test_a_job_collected_by_a_claim_before_its_message_came_is_delivered_once() -> None:
    handed = Handed()
    handed.offered("c1", standing=True)
    claims = _claims(handed, [("a", "7")])
    assert [claim.id for claim in handed.collected("c1", claims)] == ["a"]
    assert handed.heard(_message("c1", [("a", "7")])) == ()  # its message, late: already delivered
    assert handed.heard(_message("c1", [("b", "9")])) == {"default"}
    assert [claim.id for claim in handed.take("c1")] == ["b"]
    assert handed.heard(_message("c2", [("c", "10")])) == ()  # a consumer of another process


def test_a_job_heard_of_before_a_claim_collected_it_is_delivered_once() -> None:
    handed = Handed()
    handed.offered("c1", standing=True)
    assert handed.heard(_message("c1", [("a", "7")])) == {"default"}
    assert handed.seen("c1") == 7  # the claim that follows tells the server: it leaves "a" out
    assert handed.collected("c1", _claims(handed, [("a", "7")])) == []
    # A claim's own jobs have higher tokens than any handed before it, whatever was heard.
    assert [claim.id for claim in handed.take("c1")] == ["a"]


def _claims(handed: Handed, rows: Collection[tuple[str, str]]) -> list[Any]:
    """The claims a message with ``rows`` tells (read by a scratch ``Handed``)."""
    scratch = Handed()
    scratch.offered("x", standing=True)
    scratch.heard(_message("x", rows))
    return scratch.take("x")


async def test_leaving_gives_back_unstarted_the_jobs_handed_and_never_taken(redis_server: RedisServer) -> None:
    async with _stores(redis_server) as (store, other):
        await _offer(store)
        heard = await _handed_here(store, other)  # heard of, not taken
        _drop_messages(store)
        unheard = await other.enqueue(new_job())  # handed, its message lost
        assert (await info_of(other, unheard)).state == "running"
        await store.leave("c1")
        for job_id in (heard, unheard):
            info = await info_of(other, job_id)
            assert (info.state, info.deliveries) == ("queued", 0)
        later = await other.enqueue(new_job())
        assert (await info_of(other, later)).state == "queued"  # its offer went with it
        claims = await other.claim("c2", QUEUES, 4)
        assert [claim.id for claim in claims] == [heard, unheard, later]  # each kept its place


async def test_a_renewal_extends_the_leases_of_jobs_handed_and_not_taken(redis_server: RedisServer) -> None:
    async with _stores(redis_server) as (store, other):
        await _offer(store)
        job_id = await _handed_here(store, other)
        assert store._client is not None
        key = f"{store._prefix}:running"
        before = await store._client.zscore(key, job_id)
        assert before is not None
        renewal = await store.renew(consumer_info("c1"), [])
        assert (renewal.lost, renewal.cancelled) == (frozenset(), frozenset())
        after = await store._client.zscore(key, job_id)
        assert after is not None
        assert after > before


async def test_an_offer_lapses_when_its_consumer_stops_claiming(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(redis_claims, "OFFER_TTL", 0.05)
    async with _stores(redis_server) as (store, other):
        assert store._client is not None
        client = store._client
        await _offer(store)
        seconds, micros = await client.time()  # after the claim: its offer lapses before this + 0.05
        lapsed = seconds + micros / 1e6 + 0.05

        async def server_past_lapse() -> bool:
            now_s, now_us = await client.time()
            return now_s + now_us / 1e6 > lapsed

        await eventually(server_past_lapse, "the server's clock past the offer")
        job_id = await other.enqueue(new_job())
        assert (await info_of(other, job_id)).state == "queued"


async def test_a_job_given_back_is_not_overtaken_by_a_job_handed(redis_server: RedisServer) -> None:
    async with _stores(redis_server) as (store, other):
        first = await other.enqueue(new_job())
        (held,) = await other.claim("c2", QUEUES, 1)
        await _offer(store)
        await other.release([held.hold], started=False)  # ready again, in its old place
        second = await other.enqueue(new_job())
        assert (await info_of(other, second)).state == "queued"  # not handed ahead of the first
        assert [claim.id for claim in await store.claim("c1", QUEUES, 1, waits=True)] == [first]


async def test_a_consumer_runs_a_job_handed_to_it(redis_server: RedisServer) -> None:
    lab = Lab()
    async with _stores(redis_server) as (store, other), Client(other) as client, serving(store, lab, workers=2):
        warm = await client.submit(lab.echo, "warm")
        assert await warm.result(timeout=10) == "warm"
        # Idle now: its last claim came up short, and it waits.
        await eventually(lambda: store._handed._offering != set(), "the consumer's offer")
        calls = Calls(store)
        job = await client.submit(lab.echo, "handed")
        assert await job.result(timeout=10) == "handed"
        assert job.id not in calls.from_queues  # never in its queue: claimed for the consumer as it was stored
        assert (await job.info()).deliveries == 1


async def test_a_stopping_consumer_withdraws_its_offer(redis_server: RedisServer) -> None:
    # Regression: a consumer draining a long job kept its offer, and a job stored meanwhile was handed to it,
    # to sit unstarted until the consumer left.
    lab = Lab()
    async with _stores(redis_server) as (store, other), Client(other) as client:
        async with serving(store, lab, workers=2) as node:
            long = await client.submit(lab.hold, "long")
            await eventually(lambda: lab.starts("long") == 1, "the long job started")
            await eventually(lambda: store._handed._offering != set(), "the consumer's offer")
            async with anyio.create_task_group() as group:
                group.start_soon(node.consumer.stop)
                await eventually(lambda: not store._handed._offering, "the offer withdrawn")
                late = await client.submit(lab.echo, "late")
                assert await in_state(late, "queued")
                assert await in_state(long, "running")
                lab.open("long")
        info = await late.info()
        assert (info.state, info.deliveries) == ("queued", 0)


async def test_a_consumer_that_begins_to_wait_while_the_listener_subscribes_is_heard(
    redis_server: RedisServer,
) -> None:
    # Its channel goes out on the listener's connection while the listener's own subscription is on its way:
    # both are heard.
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    async with (
        RedisStore(redis_server.url, prefix=prefix) as store,
        RedisStore(redis_server.url, prefix=prefix) as other,
    ):
        watch = store._watch
        assert watch is not None
        with anyio.fail_after(10):
            while watch._pubsub is None:  # the listener's task starts
                await anyio.lowlevel.checkpoint()
            assert not watch.hears_handed("c1")  # while the listener subscribes
            await watch.subscribed.wait()
        await _offer(store)
        job_id = await _handed_here(store, other)
        assert [claim.id for claim in await store.claim("c1", QUEUES, 4, waits=True)] == [job_id]
        assert await store.claim("c1", QUEUES, 0) == []  # withdrawn: the next job is c2's
        done = await other.enqueue(new_job())
        (claim,) = await other.claim("c2", QUEUES, 1)
        async with anyio.create_task_group() as group:
            group.start_soon(store.wait, done, 10.0)
            await anyio.wait_all_tasks_blocked()
            assert await other.complete([succeeded(claim.hold)]) == [True]
        assert store._client is not None
        counts = await store._client.pubsub_numsub(f"{prefix}:done", f"{prefix}:handed-to:c1")
        assert [count for _, count in counts] == [2, 1]
