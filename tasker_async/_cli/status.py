"""``python -m tasker_async status``: each queue's depths per lane, and the live consumers, as a table or JSON."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, TextIO

import anyio

from ..durable import ConsumerInfo, QueueStats, Store, open_store
from .failures import TOLD, tell

__all__ = ("Snapshot", "format_json", "format_table", "run", "snapshot")

QUEUE_FIELDS = ("ready_priority", "ready_main", "delayed", "running", "dead")
QUEUE_HEADERS = ("QUEUE", "PRIORITY", "MAIN", "DELAYED", "RUNNING", "DEAD")
CONSUMER_HEADERS = ("CONSUMER", "HOST", "PID", "CAPACITY", "RUNNING", "HEARTBEAT")


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What the store told, at one instant: each queue's counts and the consumers heard from lately."""

    at: float
    queues: dict[str, QueueStats]
    consumers: tuple[ConsumerInfo, ...]


async def snapshot(store: Store) -> Snapshot:
    """Read every queue's counts, and the consumers (listed whatever queue they serve)."""
    queues = {name: await store.stats(name) for name in await store.queue_names()}
    seen: dict[str, ConsumerInfo] = {}
    # A store with no job yet still lists its consumers: ask the default queue too.
    for stats in (*queues.values(), await store.stats("default")):
        for consumer in stats.consumers:
            seen.setdefault(consumer.id, consumer)
    consumers = tuple(sorted(seen.values(), key=lambda consumer: consumer.id))
    return Snapshot(time.time(), queues, consumers)


def as_dict(view: Snapshot) -> dict[str, Any]:
    """The ``--json`` document: ``{"queues": {NAME: counts}, "consumers": [...]}``."""
    return {
        "queues": {
            name: {field: getattr(stats, field) for field in QUEUE_FIELDS} for name, stats in view.queues.items()
        },
        "consumers": [
            {
                "id": consumer.id,
                "host": consumer.host,
                "pid": consumer.pid,
                "capacity": consumer.capacity,
                "running": consumer.running,
                "heartbeat_age": round(consumer.heartbeat_age(view.at), 3),
            }
            for consumer in view.consumers
        ],
    }


def format_json(view: Snapshot) -> str:
    """The snapshot as one JSON document."""
    return json.dumps(as_dict(view), indent=2)


def _table(headers: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    """Columns padded to their widest cell: the first aligned left, the others right."""
    widths = [max(len(row[column]) for row in (headers, *rows)) for column in range(len(headers))]
    return [
        "  ".join(
            cell.ljust(width) if column == 0 else cell.rjust(width)
            for column, (cell, width) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in (headers, *rows)
    ]


def format_table(view: Snapshot) -> str:
    """The snapshot as two small aligned tables, queues then consumers."""
    lines: list[str] = []
    if view.queues:
        rows = [(name, *(str(getattr(stats, field)) for field in QUEUE_FIELDS)) for name, stats in view.queues.items()]
        lines += _table(QUEUE_HEADERS, rows)
    else:
        lines.append("no queues: the store holds no job")
    lines.append("")
    if view.consumers:
        rows = [
            (c.id, c.host, str(c.pid), str(c.capacity), str(c.running), f"{c.heartbeat_age(view.at):.1f} s ago")
            for c in view.consumers
        ]
        lines += _table(CONSUMER_HEADERS, rows)
    else:
        lines.append("no consumers heard from lately")
    return "\n".join(lines)


async def _read(url: str) -> Snapshot:
    # A status only looks: where there is no store, it says so rather than make an empty one.
    async with open_store(url, create=False) as store:
        return await snapshot(store)


def run(*, store_url: str, as_json: bool, out: TextIO) -> int:
    """Print the status of the store at ``store_url``; return the exit code.

    Args:
        store_url: what ``open_store`` takes.
        as_json: print JSON rather than tables.
        out: where to print.
    """
    try:
        view = anyio.run(_read, store_url)
    except TOLD as exc:
        return tell(exc)
    out.write((format_json(view) if as_json else format_table(view)) + "\n")
    out.flush()
    return 0
