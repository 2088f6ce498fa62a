"""The worker module of the durable example: what a worker process runs, and on which resource.

Each worker of the manager holds one (simulated) browser page. Two tasks:

- ``pages.render``: load a URL and return what it shows. It only reads, so
  running it twice is harmless.
- ``pages.snapshot``: load a URL and save its text under a name made from the
  URL. Saving goes through a temporary file and an atomic rename, so a second
  run (after a worker died mid-run, say) writes the same file with the same
  bytes: the task is idempotent, as every durable task should be. Producers
  submit it with ``key=`` so that asking twice for the same snapshot adds no
  second job.

Run any number of worker processes, from the repository root:

    python -m tasker_async worker examples.durable.tasks --store sqlite:///tasker.db

``TASKER_SNAPSHOTS`` names the directory snapshots go to (default ``snapshots``).
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import os
import tempfile
from pathlib import Path

import anyio

from tasker_async import Config
from tasker_async.durable import Registry

__all__ = ("Page", "close_page", "config", "open_page", "registry", "render", "snapshot", "snapshot_path")

_ids = itertools.count(1)


class Page:
    """Stands in for a browser page: expensive to open, one URL at a time."""

    def __init__(self) -> None:
        self.id = next(_ids)
        self.closed = False

    async def goto(self, url: str) -> str:
        """Load ``url`` and return its text (made up from the URL: no network involved)."""
        if self.closed:
            raise RuntimeError(f"page {self.id} is closed")
        await asyncio.sleep(0.02)  # the page loads
        return f"<title>{url.rstrip('/').rsplit('/', 1)[-1] or url}</title> the text of {url}"


async def open_page() -> Page:
    """``on_create``: open one page (a real browser takes a while here)."""
    await asyncio.sleep(0)
    return Page()


async def close_page(page: Page) -> None:
    """``on_destroy``: close it."""
    await asyncio.sleep(0)
    page.closed = True


registry = Registry()

# The manager each worker process runs; ``--concurrency N`` on the command line sets ``worker_count``.
config = Config(on_create=open_page, on_destroy=close_page, worker_count=4)


@registry.task("pages.render", lease=10.0)
async def render(page: Page, url: str) -> dict[str, object]:
    """Load ``url`` and return its title and length."""
    text = await page.goto(url)
    title = text.split("<title>", 1)[1].split("</title>", 1)[0]
    return {"url": url, "title": title, "length": len(text), "page": page.id}


def snapshot_path(url: str) -> Path:
    """Where the snapshot of ``url`` goes: a name made from the URL alone, so a rerun lands on the same file."""
    folder = Path(os.environ.get("TASKER_SNAPSHOTS", "snapshots"))
    return folder / f"{hashlib.sha256(url.encode()).hexdigest()[:16]}.txt"


def _save(target: Path, text: str) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    # Write aside, then rename over the target: a run cut short leaves no half-written snapshot behind.
    fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=".partial-")
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    os.replace(temporary, target)


@registry.task("pages.snapshot", lease=10.0, max_deliveries=3)
async def snapshot(page: Page, url: str) -> str:
    """Save the text of ``url``; return the file's path. Idempotent: a rerun rewrites the same file."""
    text = await page.goto(url)
    target = snapshot_path(url)
    await anyio.to_thread.run_sync(_save, target, text)  # file I/O off the event loop
    return str(target)
