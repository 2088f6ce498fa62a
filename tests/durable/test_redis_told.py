"""RedisStore tells a job's snapshot with its end: the waiter of the store object that stored it needs no read."""

from __future__ import annotations

import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterator
from types import SimpleNamespace
from typing import Any

import anyio
import pytest

from tasker_async.durable import ErrorInfo, RedisStore
from tasker_async.durable._stores.records import Finished, NewJob, Outcome
from tasker_async.durable._stores.redis import heard
from tasker_async.durable._stores.redis.heard import HeardOutcomes

from .servers.redis_server import RedisServer

pytestmark = pytest.mark.timeout(30)


def _record(job_id: str, ttl: str, row: bytes) -> bytes:
    parts = (job_id.encode(), ttl.encode(), row)
    return b"".join(len(part).to_bytes(4, "little") + part for part in parts)


def _row(values: list[bytes | None]) -> bytes:
    flags = bytes(b"1"[0] if value is not None else b"0"[0] for value in values)
    return b"".join(len(part).to_bytes(4, "little") + part for part in (flags, *(v or b"" for v in values)))


def test_only_wanted_jobs_kept_long_enough_are_kept_and_each_is_taken_once() -> None:
    outcomes = HeardOutcomes()
    row = _row([b"a", None, b"x"])
    told = _record("a", "86400.0", row) + _record("b", "86400.0", row) + _record("c", "1.0", row)
    outcomes.keep(told, lambda job_id: job_id in {"a", "c"})
    assert len(outcomes) == 1  # b is not wanted; c is purged too soon to be kept
    assert outcomes.take("a") == [b"a", None, b"x"]
    assert outcomes.take("a") is None
    assert outcomes.take("b") is None


def test_a_snapshot_is_used_only_soon_after_it_was_heard(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr(heard, "time", SimpleNamespace(monotonic=lambda: now[0]))
    outcomes = HeardOutcomes()
    outcomes.keep(_record("a", "86400.0", _row([b"a"])) + _record("b", "86400.0", _row([b"b"])), lambda _: True)
    now[0] += heard.USE_WITHIN - 1
    assert outcomes.take("a") == [b"a"]
    now[0] += 2
    assert outcomes.take("b") is None  # too old: the waiter reads the job instead


def test_only_the_newest_snapshots_are_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(heard, "LIMIT", 3)
    outcomes = HeardOutcomes()
    outcomes.keep(b"".join(_record(str(n), "86400.0", _row([b"v"])) for n in range(5)), lambda _: True)
    assert len(outcomes) == 3
    assert outcomes.take("1") is None
    assert outcomes.take("4") == [b"v"]


@pytest.fixture
async def pair(redis_server: RedisServer) -> AsyncIterator[tuple[RedisStore, RedisStore]]:
    """A client's store object and a consumer's, on one fresh key prefix."""
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    async with (
        RedisStore(redis_server.url, prefix=prefix) as mine,
        RedisStore(redis_server.url, prefix=prefix) as other,
    ):
        await mine._require_watch().subscribed.wait()
        await other._require_watch().subscribed.wait()
        yield mine, other


def _count_reads(store: RedisStore) -> list[str]:
    """The job ids ``store`` reads from now on (its waiters' looks and its ``info`` calls)."""
    looked: list[str] = []
    reads: Callable[[str], Any] = store._reads

    async def counted(job_id: str) -> Any:
        looked.append(job_id)
        return await reads(job_id)

    store._reads = counted  # type: ignore[assignment]  # a spy in place of the group commit
    return looked


async def _end(mine: RedisStore, other: RedisStore, outcome: Callable[[Any], Outcome], **job: Any) -> Finished:
    """``mine`` stores a job, ``other`` takes it and records ``outcome(lease)``; what ``mine`` waiting gets."""
    new = NewJob(id=uuid.uuid4().hex, name="told.task", queue="default", payload=b"[]", **job)
    await mine.enqueue(new)
    [claim] = await other.claim("consumer-1", ["default"], 1)
    assert await other.complete([outcome(claim.hold)]) == [True]
    with anyio.fail_after(10):
        return await mine.wait(new.id, None)


@pytest.mark.parametrize(
    "outcome",
    [
        lambda lease: Outcome(lease=lease, state="succeeded", result=b'{"rows": [1, 2]}'),
        lambda lease: Outcome(lease=lease, state="succeeded"),
        lambda lease: Outcome(lease=lease, state="failed", error=ErrorInfo("m.Boom", "bad: é", "Traceback...")),
        lambda lease: Outcome(lease=lease, state="cancelled"),
    ],
    ids=["result", "no-result", "failed", "cancelled"],
)
async def test_the_told_snapshot_is_what_a_read_gives_and_spares_the_read(
    pair: tuple[RedisStore, RedisStore], outcome: Callable[[Any], Outcome]
) -> None:
    mine, other = pair
    looked = _count_reads(mine)
    finished = await _end(mine, other, outcome, key=f"k-{uuid.uuid4().hex}")
    assert looked == []  # no read: the end message told it all
    read = await mine.info(finished.info.id)
    assert looked == [finished.info.id]
    assert finished.info == read
    assert finished.result == outcome(None).result
    assert len(other._require_watch().outcomes) == 0  # the consumer's store object waits for none of them


@pytest.mark.parametrize(
    ("outcome", "job"),
    [
        (lambda lease: Outcome(lease=lease, state="dead", error=ErrorInfo("m.Bad", "undecodable")), {}),
        (lambda lease: Outcome(lease=lease, state="succeeded", result=b'"' + b"x" * heard.ROW_LIMIT + b'"'), {}),
        (lambda lease: Outcome(lease=lease, state="succeeded", result=b"1"), {"result_ttl": heard.MIN_TTL / 2}),
    ],
    ids=["dead", "large", "short-ttl"],
)
async def test_a_dead_large_or_soon_purged_outcome_is_read_as_before(
    pair: tuple[RedisStore, RedisStore], outcome: Callable[[Any], Outcome], job: dict[str, Any]
) -> None:
    mine, other = pair
    looked = _count_reads(mine)
    finished = await _end(mine, other, outcome, **job)
    assert looked == [finished.info.id]
    expected = outcome(None)
    assert (finished.info.state, finished.result) == (expected.state, expected.result)
    assert finished.info.error == expected.error


class _NoWalk(OrderedDict[str, tuple[float, bytes]]):
    """A mapping that refuses to be walked: evicting the oldest must not walk the mapping from its front."""

    def __iter__(self) -> Iterator[str]:
        raise AssertionError("walked the mapping to find its oldest key")


def test_evicting_the_oldest_snapshot_does_not_walk_the_ones_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(heard, "LIMIT", 3)
    outcomes = HeardOutcomes()
    outcomes._rows = _NoWalk()
    outcomes.keep(b"".join(_record(str(n), "86400.0", _row([b"v"])) for n in range(5)), lambda _: True)
    assert len(outcomes) == 3
