"""The SQLite store's own row helpers: statements with many ids, and the held jobs' state rows."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from typing import Any

from ..records import StepRef
from ..rows import STATE_COLUMNS, StateRow

__all__ = ("HeldRow", "chunks", "placeholders", "state_rows")

# SQLite refuses statements with too many parameters (32766 since 3.32, 999 before): id lists go in slices.
CHUNK = 500


def placeholders(count: int) -> str:
    """``?, ?, ...`` for ``count`` parameters."""
    return ", ".join("?" * count)


def chunks(values: Sequence[str]) -> Iterator[Sequence[str]]:
    """``values`` in slices small enough for one statement's parameters."""
    for start in range(0, len(values), CHUNK):
        yield values[start : start + CHUNK]


class HeldRow(StateRow):
    """A job's ``STATE_COLUMNS`` and the run step it belongs to, if any (read in the same statement)."""

    __slots__ = ("ref",)

    def __init__(self, row: Sequence[Any]) -> None:
        super().__init__(row)
        self.ref = None if row[8] is None else StepRef(row[8], row[9], row[10])


def state_rows(conn: sqlite3.Connection, ids: Sequence[str]) -> dict[str, HeldRow]:
    """The ``STATE_COLUMNS`` (and step) of the jobs among ``ids`` that exist, by id."""
    unique = sorted(set(ids))
    rows: dict[str, HeldRow] = {}
    for part in chunks(unique):
        sql = f"SELECT {STATE_COLUMNS}, run_id, step, item FROM jobs WHERE id IN ({placeholders(len(part))})"
        for row in conn.execute(sql, part):
            rows[row[0]] = HeldRow(row)
    return rows
