"""The SQLite store's own row helpers: statements with many ids, and the held jobs' state rows."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence

from ..rows import STATE_COLUMNS, StateRow

__all__ = ("chunks", "placeholders", "state_rows")

# SQLite refuses statements with too many parameters (32766 since 3.32, 999 before): id lists go in slices.
CHUNK = 500


def placeholders(count: int) -> str:
    """``?, ?, ...`` for ``count`` parameters."""
    return ", ".join("?" * count)


def chunks(values: Sequence[str]) -> Iterator[Sequence[str]]:
    """``values`` in slices small enough for one statement's parameters."""
    for start in range(0, len(values), CHUNK):
        yield values[start : start + CHUNK]


def state_rows(conn: sqlite3.Connection, ids: Sequence[str]) -> dict[str, StateRow]:
    """The ``STATE_COLUMNS`` of the jobs among ``ids`` that exist, by id."""
    unique = sorted(set(ids))
    rows: dict[str, StateRow] = {}
    for part in chunks(unique):
        sql = f"SELECT {STATE_COLUMNS} FROM jobs WHERE id IN ({placeholders(len(part))})"
        for row in conn.execute(sql, part):
            rows[row[0]] = StateRow(row)
    return rows
