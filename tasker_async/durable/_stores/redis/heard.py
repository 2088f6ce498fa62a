"""Outcomes heard: the snapshots a job's end message carries, kept for the waiters of this store object.

``complete`` (jobs.lua, ``told_row``) publishes after the finished ids each recorded job's snapshot (what the
``infos`` script would read: ``codec.INFO_FIELDS``) unless the job is dead or the snapshot larger than
``ROW_LIMIT``. The listener keeps those of the jobs someone here waits for, or may soon wait for (this store
object stored them), and the waiter's look takes its job's snapshot instead of reading the job: one read
fewer per awaited job, and no round trip between a job's end and its result.

Why a kept snapshot is still the job's: a job that succeeded, failed or was cancelled does not change again
until it is purged, ``result_ttl`` after its end (a dead one may be requeued: it is never told). So only jobs
whose ``result_ttl`` is at least ``MIN_TTL`` are kept, and a kept snapshot is used within ``USE_WITHIN`` of
being heard, long before the engine may purge the job; past that, the waiter reads.
"""

from __future__ import annotations

import struct
import time
from collections import OrderedDict
from collections.abc import Callable

__all__ = ("LIMIT", "MIN_TTL", "ROW_LIMIT", "USE_WITHIN", "HeardOutcomes")

# Bytes of result and error a told snapshot may carry (a larger one is read by its waiter instead): every
# listener of the store's prefix receives every message.
ROW_LIMIT = 2048
# Seconds: jobs kept for less than MIN_TTL after their end are not kept here; a snapshot is used within
# USE_WITHIN of being heard.
MIN_TTL = 60.0
USE_WITHIN = 30.0
# Snapshots kept at most (the oldest go first): the waiters they are for take them within moments.
LIMIT = 10_000

_LENGTH = struct.Struct("<I")
_PRESENT = ord("1")


def _frame(data: bytes, pos: int) -> tuple[bytes, int]:
    """The frame of ``data`` at ``pos`` (codec.frames), and where it ends."""
    (size,) = _LENGTH.unpack_from(data, pos)
    pos += 4
    return data[pos : pos + size], pos + size


def fields(row: bytes) -> list[bytes | None]:
    """A told snapshot's fields (as HMGET gives them): its first frame flags each one present or absent."""
    flags, pos = _frame(row, 0)
    values: list[bytes | None] = []
    for flag in flags:
        value, pos = _frame(row, pos)
        values.append(value if flag == _PRESENT else None)
    return values


class HeardOutcomes:
    """The snapshots heard of wanted jobs, by job id, each with the time it may be used until."""

    __slots__ = ("_rows",)

    def __init__(self) -> None:
        self._rows: OrderedDict[str, tuple[float, bytes]] = OrderedDict()  # oldest first (see Expected)

    def __len__(self) -> int:
        return len(self._rows)

    def keep(self, told: bytes, wanted: Callable[[str], bool]) -> None:
        """Keep the snapshots ``told`` (a message's part after its ids) of the jobs ``wanted`` says."""
        rows = self._rows
        until = time.monotonic() + USE_WITHIN
        pos, end = 0, len(told)
        while pos < end:
            job_id, pos = _frame(told, pos)
            ttl, pos = _frame(told, pos)
            row, pos = _frame(told, pos)
            key = job_id.decode()
            if float(ttl) >= MIN_TTL and wanted(key):
                rows[key] = (until, row)
                rows.move_to_end(key)  # heard again: it goes last, as the newest
        while len(rows) > LIMIT:
            rows.popitem(last=False)

    def take(self, job_id: str) -> list[bytes | None] | None:
        """The job's snapshot (its fields) if one was heard and may still be used; forgotten either way."""
        entry = self._rows.pop(job_id, None)
        if entry is None or time.monotonic() > entry[0]:
            return None
        return fields(entry[1])
