"""Turning script replies (bytes) into the store's records, and records into script arguments."""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Iterable, Sequence
from typing import Any, cast

from ..._model.records import ConsumerInfo, ErrorInfo, JobInfo, JobState
from ..._model.workflow.records import RunEvent, RunEventKind
from ..records import Claim, Lease, NewJob, Outcome
from ..rules import is_live, visible_state

__all__ = (
    "claims",
    "consumer_args",
    "consumers",
    "frames",
    "job_info",
    "lease_args",
    "outcomes_arg",
    "pack",
    "pack_job",
    "run_events",
    "text",
)


def text(value: Any) -> str:
    """A reply element as text."""
    return value.decode() if isinstance(value, bytes) else str(value)


def _time(value: bytes | None) -> float | None:
    return float(value) if value else None


def pack(values: Iterable[bytes | str | int]) -> bytes:
    """``values`` as one argument of netstrings (``<length>:<bytes>`` each), which ``fields`` in jobs.lua reads."""
    parts: list[bytes] = []
    for value in values:
        data = value if isinstance(value, bytes) else str(value).encode()
        parts.append(b"%d:%b" % (len(data), data))
    return b"".join(parts)


def frames(values: Iterable[bytes]) -> bytes:
    """``values`` as frames (a 4-byte little-endian length, then the bytes), which ``frames`` in jobs.lua reads.

    The batches a script takes in one argument (jobs to store, outcomes) are framed so: the script reads a
    record with one ``struct.unpack``, several times faster than it parses netstrings.
    """
    return b"".join([struct.pack("<I", len(value)) + value for value in values])


def pack_job(job: NewJob) -> bytes:
    """``enqueue``'s twelve fields for ``job``, framed as ``frames`` frames them (one ``struct.pack`` per job)."""
    job_id, name, queue, payload = job.id.encode(), job.name.encode(), job.queue.encode(), job.payload
    key = (job.key or "").encode()
    delay, tries = repr(float(job.delay)).encode(), str(job.max_deliveries).encode()
    lease, ttl = repr(float(job.lease)).encode(), repr(float(job.result_ttl)).encode()
    layout = (
        f"<I{len(job_id)}sI{len(name)}sI{len(queue)}sI{len(payload)}sI1sI1sI{len(key)}sI{len(delay)}sI1s"
        f"I{len(tries)}sI{len(lease)}sI{len(ttl)}s"
    )
    return struct.pack(
        layout,
        len(job_id), job_id, len(name), name, len(queue), queue, len(payload), payload,
        1, b"1" if job.priority else b"0",
        1, b"1" if job.key is not None else b"0",
        len(key), key, len(delay), delay,
        1, b"1" if job.once else b"0",
        len(tries), tries, len(lease), lease, len(ttl), ttl,
    )  # fmt: skip


def lease_args(leases: Sequence[Lease]) -> list[Any]:
    """A count, then each lease's job id and token."""
    args: list[Any] = [len(leases)]
    for lease in leases:
        args += [lease.job_id, lease.token]
    return args


_NO_RESULT = struct.pack("<I1sI0s", 1, b"0", 0, b"")
_NO_ERROR = struct.pack("<I1sI0sI0sI0s", 1, b"0", 0, b"", 0, b"", 0, b"")
_NO_PARTS = struct.pack("<I", 0)


def _outcome(outcome: Outcome) -> bytes:
    result, error, parts = outcome.result, outcome.error, outcome.parts
    job_id, token, state = outcome.lease.job_id.encode(), outcome.lease.token.encode(), outcome.state.encode()
    layout = f"<I{len(job_id)}sI{len(token)}sI{len(state)}s"
    head = struct.pack(layout, len(job_id), job_id, len(token), token, len(state), state)
    head += _NO_RESULT if result is None else frames((b"1", result))
    head += (
        _NO_ERROR
        if error is None
        else frames((b"1", error.type.encode(), error.message.encode(), error.traceback.encode()))
    )
    if parts is None:
        return head + _NO_PARTS
    # A run step's list elements: '*' and their netstrings, so an empty list is told apart from none.
    return head + frames((b"*" + pack(parts),))


def outcomes_arg(outcomes: Sequence[Outcome]) -> bytes:
    """Ten fields per outcome (see ``complete`` in jobs.lua), framed in one argument."""
    return b"".join(map(_outcome, outcomes))


def due_in(reply: bytes | None) -> float | None:
    """``due_after``'s reply: None when the claim took its limit, else the seconds until a delayed job is due."""
    if reply is None:
        return None
    return float(reply) if reply else math.inf


def claims(reply: list[list[Any]]) -> list[Claim]:
    """``claim``'s reply as claims."""
    return [
        Claim(
            id=text(row[0]),
            name=text(row[1]),
            queue=text(row[2]),
            payload=bytes(row[3]),
            priority=row[4] == b"1",
            once=row[5] == b"1",
            deliveries=int(row[6]),
            max_deliveries=int(row[7]),
            lease=float(row[8]),
            token=text(row[9]),
        )
        for row in reply
    ]


# The job hash fields a snapshot reads, in the order ``infos`` returns them (one HMGET per job). ``told_row`` in
# jobs.lua builds the same fields in this order by hand (tests/durable/test_redis_told.py compares the two).
INFO_FIELDS = (
    "id", "name", "queue", "state", "ready_at", "deliveries", "priority", "key", "created_at", "started_at",
    "finished_at", "etype", "emsg", "etb", "consumer", "result",
)  # fmt: skip


def job_info(values: list[Any], now: float) -> tuple[JobInfo, bytes | None] | None:
    """A job's ``INFO_FIELDS`` (HMGET's reply) as a snapshot at ``now`` and its result; None if there is no job."""
    (job_id, name, queue, state, ready_at, deliveries, priority, key, created_at, started_at, finished_at,
     etype, emsg, etb, consumer, result) = values  # fmt: skip
    if job_id is None:
        return None
    error = None if etype is None else ErrorInfo(etype.decode(), text(emsg), text(etb))
    info = JobInfo(
        id=job_id.decode(),
        name=name.decode(),
        queue=queue.decode(),
        state=visible_state(cast(JobState, state.decode()), float(ready_at), now),
        deliveries=int(deliveries),
        priority=priority == b"1",
        key=None if key is None else key.decode(),
        created_at=float(created_at),
        started_at=_time(started_at),
        finished_at=_time(finished_at),
        error=error,
        consumer=text(consumer) or None,
    )
    return info, result


def consumer_args(consumer: ConsumerInfo) -> list[Any]:
    """``renew``'s consumer id and its record (JSON; the heartbeat time is the engine's)."""
    record = {
        "host": consumer.host,
        "pid": consumer.pid,
        "started_at": consumer.started_at,
        "capacity": consumer.capacity,
        "running": consumer.running,
        "queues": list(consumer.queues),
    }
    return [consumer.id, json.dumps(record)]


def consumers(records: list[bytes], heartbeats: list[bytes], now: float) -> tuple[ConsumerInfo, ...]:
    """The consumers heard from recently, by id."""
    beats = {text(heartbeats[k]): float(heartbeats[k + 1]) for k in range(0, len(heartbeats), 2)}
    live: list[ConsumerInfo] = []
    for k in range(0, len(records), 2):
        cid = text(records[k])
        beat = beats.get(cid)
        if beat is None or not is_live(beat, now):
            continue
        record = json.loads(records[k + 1])
        live.append(
            ConsumerInfo(
                id=cid,
                host=record["host"],
                pid=int(record["pid"]),
                started_at=float(record["started_at"]),
                capacity=int(record["capacity"]),
                running=int(record["running"]),
                heartbeat_at=beat,
                queues=tuple(record["queues"]),
            )
        )
    return tuple(sorted(live, key=lambda c: c.id))


def run_events(flat: list[Any]) -> list[RunEvent]:
    """The run events a script made (kind, run id, workflow, at; flat), oldest first."""
    return [
        RunEvent(
            kind=cast(RunEventKind, text(flat[k])),
            run_id=text(flat[k + 1]),
            workflow=text(flat[k + 2]),
            at=float(flat[k + 3]),
        )
        for k in range(0, len(flat), 4)
    ]
