"""The pure side of the durable demo: who holds what, when a kill is fair, the status and balance lines."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ..durable import JobInfo

__all__ = ("Balance", "Process", "Tally", "balance", "fair_kill", "status_line", "tally")

SAFE_MARGIN = 0.2  # seconds a job must still have to run for a kill to cut it short, never after its end


@dataclass
class Process:
    """One worker process of the demo, as the demo follows it.

    Attributes:
        label: ``A`` or ``B``.
        pid: its process id (consumer ids carry it).
        serving: whether its consumer was heard from.
        killed: whether the demo killed it.
        exit_code: its exit code once it ended.
    """

    label: str
    pid: int
    serving: bool = False
    killed: bool = False
    exit_code: int | None = None

    @property
    def state(self) -> str:
        """``starting``, ``serving``, ``KILLED`` or ``exited N``."""
        if self.killed:
            return "KILLED"
        if self.exit_code is not None:
            return f"exited {self.exit_code}"
        return "serving" if self.serving else "starting"


def consumer_pid(consumer: str | None) -> int | None:
    """The pid inside a consumer id (``host:pid:random``), if it has one."""
    if consumer is None:
        return None
    parts = consumer.rsplit(":", 2)
    return int(parts[1]) if len(parts) == 3 and parts[1].isdigit() else None


@dataclass
class Tally:
    """Every job's state at one instant, counted store-wide and per process (by pid).

    Attributes:
        queued: jobs waiting (ready or delayed).
        finished: jobs in a final state.
        running: per pid, jobs it holds.
        done: per pid, jobs it completed.
        redelivered: per pid, jobs it holds or completed on a delivery after the first.
    """

    queued: int = 0
    finished: int = 0
    running: Counter[int] = field(default_factory=Counter)
    done: Counter[int] = field(default_factory=Counter)
    redelivered: Counter[int] = field(default_factory=Counter)


def tally(infos: Sequence[JobInfo]) -> Tally:
    """Count ``infos`` by state and by the process that holds (or last held) each job."""
    counts = Tally()
    for info in infos:
        pid = consumer_pid(info.consumer)
        if info.state in ("queued", "delayed"):
            counts.queued += 1
        elif info.state != "running":
            counts.finished += 1
        if pid is None or info.state not in ("running", "succeeded"):
            continue
        (counts.running if info.state == "running" else counts.done)[pid] += 1
        if info.deliveries > 1:
            counts.redelivered[pid] += 1
    return counts


def fair_kill(infos: Sequence[JobInfo], victim: int, seconds: Mapping[str, float], now: float) -> list[str]:
    """The jobs ``victim`` runs if killing it now cuts each short mid-run, else ``[]``.

    A job whose work ended but whose outcome is not recorded yet would rightly run a second time to
    completion after a kill (at least once): the demo kills only while each of the victim's jobs has
    ``SAFE_MARGIN`` seconds of work left, judged from its start and its planned duration (``seconds``).
    """
    held = [info for info in infos if info.state == "running" and consumer_pid(info.consumer) == victim]
    if not held:
        return []
    for info in held:
        if info.started_at is None or info.started_at + seconds[info.id] - now < SAFE_MARGIN:
            return []
    return [info.id for info in held]


def status_line(elapsed: float, counts: Tally, processes: Sequence[Process]) -> str:
    """Queued store-wide, then running / done / redelivered per process."""
    parts = [f"t={elapsed:4.1f}s queued={counts.queued:<3}"]
    for process in processes:
        pid = process.pid
        parts.append(
            f"worker {process.label} (pid {pid}) {process.state}: running={counts.running[pid]}"
            f" done={counts.done[pid]} redelivered={counts.redelivered[pid]}"
        )
    return " | ".join(parts)


@dataclass(frozen=True)
class Balance:
    """The books of a run: every job submitted should succeed once, and run to completion once.

    Attributes:
        submitted: jobs submitted.
        succeeded: jobs that ended ``succeeded`` with their own result.
        twice: jobs whose task ran to completion more than once.
        redelivered: jobs delivered more than once (a first run cut short).
    """

    submitted: int
    succeeded: int
    twice: int
    redelivered: int

    @property
    def lost(self) -> int:
        """Jobs that did not succeed."""
        return self.submitted - self.succeeded

    @property
    def balanced(self) -> bool:
        """Whether submitted = succeeded, none lost and none run twice to completion."""
        return self.lost == 0 and self.twice == 0

    def line(self) -> str:
        """The balance line the demo ends with."""
        verdict = "balanced" if self.balanced else "NOT balanced"
        sign = "=" if self.submitted == self.succeeded else "!="
        return (
            f"balance: submitted {self.submitted} {sign} succeeded {self.succeeded}, {self.lost} lost,"
            f" {self.twice} run twice to completion ({self.redelivered} redelivered; {verdict})"
        )


def balance(submitted: int, succeeded: int, redelivered: int, completions: str) -> Balance:
    """Count the jobs run to completion more than once from the completions file's ``INDEX PID`` lines."""
    runs = Counter(line.split()[0] for line in completions.splitlines() if line.strip())
    return Balance(submitted, succeeded, sum(1 for count in runs.values() if count > 1), redelivered)
