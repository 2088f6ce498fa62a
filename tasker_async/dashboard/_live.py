"""The dashboard's state: its store, the depth history, and the newest overview the sampler published.

One sampler task (started by the application's lifespan) reads the store every ``interval`` seconds,
appends the queues' counts to the history and publishes the overview; each live stream sends what was
published, so the store is read once per interval however many pages are open.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import anyio

from .._cli.status import as_dict, snapshot
from ..durable import JobInfo, JobState, RunInfo, Store
from ._history import FIELDS, History
from ._views import overview

__all__ = ("HEALTH_TIMEOUT", "LISTED_JOBS", "LISTED_RUNS", "Dashboard", "Published")

logger = logging.getLogger("tasker_async.dashboard")

LISTED_JOBS = 20  # of each list the overview holds (recent, failed, dead)
LISTED_RUNS = 12
HEALTH_TIMEOUT = 5.0  # seconds the store has to answer a health check
JOB_LISTS: dict[str, tuple[JobState, ...]] = {
    "recent": ("succeeded", "failed", "cancelled", "dead"),
    "failed": ("failed",),
    "dead": ("dead",),
}


@dataclass(frozen=True, slots=True)
class Published:
    """One overview the sampler published, and its number (1 for the first)."""

    version: int
    document: dict[str, Any]


class Dashboard:
    """What the routes share: the entered store, the options, the history and the newest overview."""

    def __init__(
        self, store: Store, *, allow_actions: bool, token: str | None, interval: float, history: History
    ) -> None:
        self.store = store
        self.allow_actions = allow_actions
        self.token = token
        self.interval = interval
        self.history = history
        self.latest: Published | None = None
        self.stopping = False
        self._failing = False  # the last sample could not read the store
        # Created on first wait: the application may be built outside any event loop.
        self._changed: anyio.Event | None = None

    @property
    def actions(self) -> dict[str, bool]:
        """Whether the page offers actions, and whether they need a token."""
        return {"allowed": self.allow_actions, "token": self.token is not None}

    async def read_status(self) -> dict[str, Any]:
        """The document ``python -m tasker_async status --json`` prints, read now."""
        return as_dict(await snapshot(self.store))

    async def read_overview(self) -> dict[str, Any]:
        """Read the store: the overview, with the history as it is.

        Raises:
            Exception: whatever the store raises (``StoreUnavailableError`` when it cannot be reached).
        """
        view = await snapshot(self.store)
        jobs: dict[str, list[JobInfo]] = {}
        for name, states in JOB_LISTS.items():
            jobs[name] = await self.store.finished_jobs(states, limit=LISTED_JOBS)
        runs: list[RunInfo] = await self.store.recent_runs(limit=LISTED_RUNS)
        return overview(
            at=view.at, status=as_dict(view), history=self.history.as_dict(), jobs=jobs, runs=runs, actions=self.actions
        )

    async def sample(self) -> None:
        """Read the store once: append the counts to the history and publish the overview (or the error)."""
        try:
            document = await self.read_overview()
        except Exception as exc:  # an outage must not end the sampler: the page shows it and it reads again
            if not self._failing:  # once per outage, not once per interval
                logger.warning("the dashboard cannot read the store: %s", exc)
            self._failing = True
            self.publish(self._unread(exc))
            return
        if self._failing:
            logger.warning("the dashboard reads the store again")
        self._failing = False
        queues = document["status"]["queues"]
        counts = {name: {field: stats[field] for field in FIELDS} for name, stats in queues.items()}
        self.history.append(document["at"], counts)
        self.publish({**document, "history": self.history.as_dict()})

    def _unread(self, exc: Exception) -> dict[str, Any]:
        """The overview while the store cannot be read: no counts, no lists, the history so far, and why."""
        return overview(
            at=time.time(),
            status=None,
            history=self.history.as_dict(),
            jobs={name: [] for name in JOB_LISTS},
            runs=[],
            actions=self.actions,
            error=f"{type(exc).__name__}: {exc}",
        )

    async def sample_forever(self) -> None:
        """Sample every ``interval`` seconds until cancelled (the first sample ``interval`` seconds from now)."""
        while True:
            await anyio.sleep(self.interval)
            await self.sample()

    def publish(self, document: dict[str, Any]) -> None:
        """Make ``document`` the newest overview and wake the streams waiting for one."""
        version = self.latest.version + 1 if self.latest else 1
        self.latest = Published(version, document)
        self._wake()

    def stop(self) -> None:
        """End every live stream (their responses finish), now and for streams opened later."""
        self.stopping = True
        self._wake()

    def _wake(self) -> None:
        if self._changed is not None:
            self._changed.set()
            self._changed = None

    async def newer(self, version: int) -> Published | None:
        """The newest overview once it is newer than ``version``; None once the dashboard stops."""
        while not self.stopping and (self.latest is None or self.latest.version <= version):
            if self._changed is None:
                self._changed = anyio.Event()
            await self._changed.wait()
        return None if self.stopping else self.latest

    async def health(self) -> str | None:
        """None while the store answers within ``HEALTH_TIMEOUT``; otherwise why not."""
        try:
            with anyio.fail_after(HEALTH_TIMEOUT):
                await self.store.queue_names()
        except TimeoutError:
            return f"the store did not answer within {HEALTH_TIMEOUT:g} s"
        except Exception as exc:  # any failure to answer is unhealthy; the message says which
            return f"{type(exc).__name__}: {exc}"
        return None

    def reset(self) -> None:
        """Forget the wake-up event of an earlier event loop (the application starts again)."""
        self._changed = None
        self.stopping = False
