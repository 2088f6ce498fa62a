"""``Client``: submits jobs to a store and hands out ``Job`` handles."""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Any, Self, TypeVar, overload

from ...errors import ConfigError
from .._model.records import QueueStats
from .._model.registry import DurableTask, TaskOptions
from .._model.serializer import encode_call
from .._model.workflow.definition import Workflow
from .._stores.protocol import Store
from .._stores.records import NewJob
from .checks import is_seconds
from .ids import new_id
from .job import Job
from .retry import call_store
from .run import WorkflowRun, new_run

__all__ = ("NAME_OPTIONS", "Client")

T = TypeVar("T")

# What a job submitted by name alone gets: the submitting process need not know the task.
NAME_OPTIONS = TaskOptions()


def _target(task_or_name: object) -> tuple[str, Callable[..., Any] | None, TaskOptions]:
    """The name, function (to name a refused argument) and options of what ``submit`` was given."""
    if isinstance(task_or_name, DurableTask):
        return task_or_name.name, task_or_name.fn, task_or_name.options
    if isinstance(task_or_name, str):
        if not task_or_name:
            raise ValueError("a task name must be a non-empty string, got ''")
        return task_or_name, None, NAME_OPTIONS
    raise TypeError(f"submit takes a DurableTask (made by Registry.task) or a task name (str), got {task_or_name!r}")


def _delay(delay: float | None) -> float:
    if delay is None:
        return 0.0
    if not is_seconds(delay, allow_zero=True):
        raise ValueError(f"delay must be a finite number of seconds >= 0 or None, got {delay!r}")
    return float(delay)


def _check_id(job_id: object, what: str) -> str:
    if not isinstance(job_id, str):
        raise TypeError(f"{what} must be a str, got {job_id!r}")
    if not job_id:
        raise ValueError(f"{what} must be a non-empty string, got ''")
    return job_id


class Client:
    """Submits jobs to a store; any number of clients in any number of processes may share one store's data.

    Use it as ``async with Client(store) as client:`` inside the store's own ``async with``.
    Leaving the block closes the client (its methods raise ``RuntimeError`` from then on);
    the ``Job`` handles it gave keep working while the store is open.

    Every store call rides out an outage: it is tried again with a capped, jittered backoff
    while the store raises ``StoreUnavailableError`` (and cut short if it does not answer),
    for ``submit_timeout`` seconds at most.

    Args:
        store: the store, entered (``open_store(url)``, ``MemoryStore()``, ``SQLiteStore(path)``).
        submit_timeout: seconds a store call may take, outage included, before
            ``StoreUnavailableError``.

    Raises:
        TypeError: ``store`` is not a ``Store``.
        ConfigError: ``submit_timeout`` is not a finite number of seconds > 0.
    """

    __slots__ = ("_closed", "_store", "_submit_timeout")

    def __init__(self, store: Store, *, submit_timeout: float = 10.0) -> None:
        if not isinstance(store, Store):
            raise TypeError(f"Client needs a Store (see open_store), got {store!r}")
        if not is_seconds(submit_timeout, allow_zero=False):
            raise ConfigError(f"submit_timeout must be a finite number of seconds > 0, got {submit_timeout!r}")
        self._store = store
        self._submit_timeout = float(submit_timeout)
        self._closed = False

    @property
    def store(self) -> Store:
        """The store jobs go to."""
        return self._store

    async def __aenter__(self) -> Self:
        """Return the client, ready."""
        self._check_open()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Close the client; the store stays open (whoever entered it closes it)."""
        self._closed = True

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("the client is closed (its async with block has ended)")

    @overload
    async def submit(
        self,
        task_or_name: DurableTask[Any, ..., T],
        /,
        *args: Any,
        priority: bool = False,
        key: str | None = None,
        delay: float | None = None,
        once: bool = False,
    ) -> Job[T]: ...

    @overload
    async def submit(
        self,
        task_or_name: str,
        /,
        *args: Any,
        priority: bool = False,
        key: str | None = None,
        delay: float | None = None,
        once: bool = False,
    ) -> Job[Any]: ...

    async def submit(
        self,
        task_or_name: DurableTask[Any, ..., Any] | str,
        /,
        *args: Any,
        priority: bool = False,
        key: str | None = None,
        delay: float | None = None,
        once: bool = False,
    ) -> Job[Any]:
        """Store a job running ``task_or_name(resource, *args)`` in some consumer; return its handle.

        The job is durable once this returns. A task name alone (the submitting process need
        not know the task) sends the job to the ``"default"`` queue with the default options
        (``max_deliveries=5``, ``lease=30.0``, ``result_ttl=86400.0``); a ``DurableTask`` with
        its own.

        Args:
            task_or_name: a ``DurableTask`` (typed: ``Job[T]`` for a task returning ``T``) or a task name.
            args: the arguments after the resource; the store's serializer must encode them.
            priority: put it in the priority lane.
            key: an idempotency key: while a job with this key is unfinished, or finished within
                its ``result_ttl``, that job is returned (same id) and nothing is added.
            delay: seconds to hold it back before it becomes ready.
            once: run it at most once: never again after a run cut short (it ends ``failed``
                with ``JobLostError``).

        Raises:
            TypeError: an argument cannot be encoded (the message names its parameter, or its
                position); nothing is stored. Also ``task_or_name`` or ``key`` of a wrong type.
            ValueError: ``delay`` is not a finite number of seconds >= 0, or ``key`` or the name is empty.
            StoreUnavailableError: the store did not take the job within ``submit_timeout``
                (if its last try got through just before, the job may be stored all the same).
            RuntimeError: the client is closed.
        """
        self._check_open()
        name, fn, options = _target(task_or_name)
        if key is not None:
            _check_id(key, "key")
        seconds = _delay(delay)
        payload = encode_call(self._store.serializer, name, args, fn=fn)
        job = NewJob(
            id=new_id(),
            name=name,
            queue=options.queue,
            payload=payload,
            priority=bool(priority),
            key=key,
            delay=seconds,
            once=bool(once),
            max_deliveries=options.max_deliveries,
            lease=options.lease,
            result_ttl=options.result_ttl,
        )
        # A try that failed may have stored the job all the same (its answer lost on the way back):
        # trying again with the same id stores nothing more (Store.enqueue).
        store = self._store
        job_id = await call_store(lambda: store.enqueue(job), timeout=self._submit_timeout, what=f"submitting {name!r}")
        return Job(self._store, job_id, patience=self._submit_timeout)

    def job(self, job_id: str) -> Job[Any]:
        """A handle on the job ``job_id`` (no I/O: whether it exists shows when the handle is used).

        Raises:
            TypeError: ``job_id`` is not a str.
            ValueError: ``job_id`` is empty.
            RuntimeError: the client is closed.
        """
        self._check_open()
        return Job(self._store, _check_id(job_id, "job_id"), patience=self._submit_timeout)

    async def stats(self, queue: str = "default") -> QueueStats:
        """The counts of ``queue`` (ready per lane, delayed, running, dead) and the live consumers.

        Raises:
            StoreUnavailableError: the store did not answer within ``submit_timeout``.
            RuntimeError: the client is closed.
        """
        self._check_open()
        _check_id(queue, "queue")
        return await call_store(lambda: self._store.stats(queue), timeout=self._submit_timeout, what="stats")

    async def requeue_dead(self, job_id: str) -> bool:
        """Give the dead job ``job_id`` another round: deliveries counted from zero, ready now.

        Returns:
            False when that job is not dead (or unknown).

        Raises:
            StoreUnavailableError: the store did not answer within ``submit_timeout``.
            RuntimeError: the client is closed.
        """
        self._check_open()
        _check_id(job_id, "job_id")
        what = f"requeueing job {job_id!r}"
        return await call_store(lambda: self._store.requeue_dead(job_id), timeout=self._submit_timeout, what=what)

    async def start(self, workflow: Workflow, /, *, key: str | None = None, **inputs: Any) -> WorkflowRun:
        """Start a run of ``workflow`` with ``inputs``: its roots' jobs are stored with it; return its handle.

        Args:
            workflow: the workflow (consumers run its steps once it is in their registry).
            key: an idempotency key: while a run with this key is running or failed, or finished within the
                workflow's ``result_ttl``, that run is returned (same id) and nothing is started.
            inputs: the workflow's inputs, by name; the store's serializer must encode them.

        Raises:
            WorkflowError: the definition is wrong, or an input is missing, unknown, named like a step or
                cannot be encoded (the message names it); nothing is stored.
            StoreUnavailableError: the store did not take the run within ``submit_timeout``.
            RuntimeError: the client is closed.
        """
        self._check_open()
        if not isinstance(workflow, Workflow):
            raise TypeError(f"start takes a Workflow, got {workflow!r}")
        if key is not None:
            _check_id(key, "key")
        run = new_run(workflow, self._store.serializer, inputs, key)
        store, what = self._store, f"starting a run of {workflow.name!r}"
        run_id = await call_store(lambda: store.start_run(run), timeout=self._submit_timeout, what=what)
        return WorkflowRun(store, run_id, workflow.name, patience=self._submit_timeout)

    async def resume(self, run_id: str) -> WorkflowRun:
        """Run a failed run's failed and ``upstream_failed`` steps again, and carry on; return its handle.

        A run that is not failed is left as it is.

        Raises:
            LookupError: no run has this id.
            StoreUnavailableError: the store did not answer within ``submit_timeout``.
            RuntimeError: the client is closed.
        """
        self._check_open()
        _check_id(run_id, "run_id")
        store, what = self._store, f"resuming run {run_id!r}"
        await call_store(lambda: store.resume_run(run_id), timeout=self._submit_timeout, what=what)
        info = await store.run_info(run_id)
        return WorkflowRun(store, run_id, "" if info is None else info.workflow, patience=self._submit_timeout)

    def __repr__(self) -> str:
        closed = " closed" if self._closed else ""
        return f"<Client store={self._store!r} submit_timeout={self._submit_timeout:g}{closed}>"
