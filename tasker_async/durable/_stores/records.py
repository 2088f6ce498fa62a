"""The records a store exchanges with the client and the consumer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .._model.records import ErrorInfo, JobInfo
from .._model.workflow.records import RunInfo

__all__ = (
    "Claim",
    "Finished",
    "Lease",
    "NewJob",
    "NewRun",
    "Outcome",
    "OutcomeState",
    "Renewal",
    "RunOutput",
    "StepPlan",
    "StepRef",
)

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
    step: StepRef | None = None  # the run step (and item) it is a job of; stores set it, clients never


@dataclass(frozen=True, slots=True)
class StepRef:
    """Which run step a job belongs to: a store keeps it with the job, and reports the job's outcome to the run.

    Attributes:
        run_id: the run's id.
        step: the step's name.
        item: for a mapped step, the index of the item the job is for; ``None`` otherwise.
    """

    run_id: str
    step: str
    item: int | None = None


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
    # For a run step some step maps over: the result list's elements, each encoded (the store hands element
    # ``i`` to that step's item ``i``). None for every other job.
    parts: tuple[bytes, ...] | None = None
    # The outcome of a run step's job, as the consumer knows it: a hint a store may use to take the path made
    # for those at once (what it records does not depend on it).
    step: bool = False


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


@dataclass(frozen=True, slots=True, kw_only=True)
class StepPlan:
    """One step of a run as a store keeps it: its place in the graph, and how its jobs are stored and delivered.

    A run keeps the plans it started with, so a deploy that changes the workflow does not change running runs.
    """

    name: str
    parents: tuple[str, ...] = ()
    map_over: str | None = None
    task: str
    queue: str
    priority: bool = False
    max_deliveries: int = 5
    lease: float = 30.0
    result_ttl: float = 86400.0


@dataclass(frozen=True, slots=True, kw_only=True)
class NewRun:
    """A workflow run to store and start: its roots' jobs are enqueued in the same atomic operation.

    Attributes:
        id: the run's id.
        workflow: the workflow's name.
        inputs: the run's inputs, encoded as one mapping by the store's serializer.
        steps: the plan of every step, in definition order.
        key: its idempotency key, if any.
        result_ttl: seconds a succeeded or cancelled run is kept after it finished (a failed one stays,
            resumable, until it is resumed to its end).
    """

    id: str
    workflow: str
    inputs: bytes
    steps: tuple[StepPlan, ...]
    key: str | None = None
    result_ttl: float = 86400.0


@dataclass(frozen=True, slots=True)
class RunOutput:
    """A finished run's snapshot with the encoded results of its succeeded steps.

    ``results`` maps a step's name to its encoded result; a mapped step's is a tuple, one per item in order.
    """

    info: RunInfo
    results: dict[str, bytes | tuple[bytes, ...]]
