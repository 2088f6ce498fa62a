"""The records a store exchanges with the client and the consumer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .._model.records import ErrorInfo, JobInfo

__all__ = ("Claim", "Finished", "Lease", "NewJob", "Outcome", "OutcomeState", "Renewal")

OutcomeState = Literal["succeeded", "failed", "cancelled", "dead"]


@dataclass(frozen=True, slots=True, kw_only=True)
class NewJob:
    """A job to store. ``delay`` is seconds from the store's now; the store turns it into a ready time."""

    id: str
    name: str
    queue: str
    payload: bytes
    priority: bool = False
    key: str | None = None
    delay: float = 0.0
    once: bool = False
    max_deliveries: int = 5
    lease: float = 30.0
    result_ttl: float = 86400.0


@dataclass(frozen=True, slots=True)
class Lease:
    """One consumer's hold on one running job: its token changes at every claim, so a stale hold is refused."""

    job_id: str
    token: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Claim:
    """A job a consumer took: what it needs to run it and to record its outcome."""

    id: str
    name: str
    queue: str
    payload: bytes
    priority: bool
    once: bool
    deliveries: int  # this delivery included
    max_deliveries: int
    lease: float
    token: str

    @property
    def hold(self) -> Lease:
        """The lease to renew, release or record with."""
        return Lease(self.id, self.token)


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """How a delivery ended, recorded only while ``lease`` is still held."""

    lease: Lease
    state: OutcomeState
    result: bytes | None = None
    error: ErrorInfo | None = None


@dataclass(frozen=True, slots=True)
class Renewal:
    """What a renewal learnt: leases lost to another consumer (or to expiry), and jobs asked to be cancelled."""

    lost: frozenset[str] = frozenset()
    cancelled: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Finished:
    """A job's snapshot with its encoded result (``None`` unless it succeeded)."""

    info: JobInfo
    result: bytes | None
