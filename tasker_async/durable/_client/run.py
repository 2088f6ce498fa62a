"""``WorkflowRun``: a handle on one workflow run, by id; and how a run starts (its plan and encoded inputs)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._model.errors import JobCancelledError, RunFailedError, WorkflowError
from .._model.serializer import Serializer, refused_key
from .._model.workflow.definition import Workflow
from .._model.workflow.records import RunInfo
from .._stores.protocol import Store
from .._stores.records import NewRun, RunOutput, StepPlan
from .checks import is_seconds
from .ids import new_id
from .retry import call_store, wait_riding_out

__all__ = ("WorkflowRun", "new_run", "run_results")


def _encoded_inputs(workflow: Workflow, serializer: Serializer, inputs: Mapping[str, Any]) -> bytes:
    try:
        return serializer.dumps(dict(inputs))
    except (TypeError, ValueError, OverflowError) as exc:
        refused = refused_key(serializer, inputs)
        culprit = "its inputs" if refused is None else f"input {refused!r} ({type(inputs[refused]).__name__})"
        raise WorkflowError(f"workflow {workflow.name!r}: {serializer!r} cannot encode {culprit}: {exc}") from exc


def new_run(workflow: Workflow, serializer: Serializer, inputs: Mapping[str, Any], key: str | None) -> NewRun:
    """The run to store for ``start``, its definition and inputs checked.

    Raises:
        WorkflowError: the definition is wrong, an input is missing, unknown or named like a step, or the
            serializer cannot encode an input (the message names it).
    """
    workflow.validate()
    workflow.check_inputs(inputs)
    steps = tuple(
        StepPlan(
            name=step.name,
            parents=step.depends_on,
            map_over=step.map_over,
            task=step.task_name,
            queue=step.options.queue,
            priority=step.priority,
            max_deliveries=step.options.max_deliveries,
            lease=step.options.lease,
            result_ttl=step.options.result_ttl,
        )
        for step in workflow.steps.values()
    )
    return NewRun(
        id=new_id(),
        workflow=workflow.name,
        inputs=_encoded_inputs(workflow, serializer, inputs),
        steps=steps,
        key=key,
        result_ttl=workflow.options.result_ttl,
    )


def run_results(output: RunOutput, serializer: Serializer) -> dict[str, Any]:
    """A finished run's results by step, decoded (a mapped step's is the list of its items' results).

    Raises:
        RunFailedError: the run failed (``.steps``: each failed step's error).
        JobCancelledError: the run was cancelled.
    """
    info = output.info
    label = f"run {info.id!r} of workflow {info.workflow!r}"
    if info.state == "failed":
        errors = info.errors
        listed = "; ".join(f"{name}: {error.type}: {error.message}" for name, error in errors.items())
        raise RunFailedError(f"{label} failed ({listed})", errors)
    if info.state == "cancelled":
        raise JobCancelledError(f"{label} was cancelled")
    results: dict[str, Any] = {}
    for name, encoded in output.results.items():
        if isinstance(encoded, bytes):
            results[name] = serializer.loads(encoded)
        else:
            results[name] = [serializer.loads(item) for item in encoded]
    return results


class WorkflowRun:
    """A handle on one workflow run: its results, its state, a way to cancel it.

    ``Client.start`` and ``Client.resume`` make them; a handle holds only the id and does no I/O until asked.
    """

    __slots__ = ("_id", "_patience", "_store", "workflow")

    def __init__(self, store: Store, run_id: str, workflow: str, *, patience: float) -> None:
        """A handle on ``run_id`` in ``store``; store calls give up after ``patience`` seconds of outage."""
        self._store = store
        self._id = run_id
        self._patience = patience
        self.workflow = workflow

    @property
    def id(self) -> str:
        """The run's id: ``Client.resume(run.id)`` picks a failed run up again."""
        return self._id

    async def result(self, timeout: float | None = None) -> dict[str, Any]:
        """Wait until the run finishes; return each step's result by name (a mapped step's: a list, item order).

        Args:
            timeout: seconds to wait at most; ``None`` waits until it finishes.

        Raises:
            TimeoutError: ``timeout`` passed first; the run carries on.
            RunFailedError: a step failed for good (``.steps``: each failed step's error); ``resume`` it.
            JobCancelledError: the run was cancelled.
            LookupError: no run has this id (never started, or purged).
            StoreUnavailableError: the store stayed unreachable for the client's ``submit_timeout``.
            ValueError: ``timeout`` is not a finite number of seconds >= 0.
        """
        if timeout is not None and not is_seconds(timeout, allow_zero=True):
            raise ValueError(f"timeout must be a finite number of seconds >= 0 or None, got {timeout!r}")
        try:
            output = await wait_riding_out(
                lambda within: self._store.run_output(self._id, within),
                timeout,
                self._patience,
                what=f"run {self._id!r}",
            )
        except LookupError as exc:
            raise LookupError(self._unknown()) from exc
        return run_results(output, self._store.serializer)

    async def info(self) -> RunInfo:
        """A snapshot of the run: its state and each step's state, attempts and error.

        Raises:
            LookupError: no run has this id.
            StoreUnavailableError: the store stayed unreachable for the client's ``submit_timeout``.
        """
        what = f"run {self._id!r}"
        info = await call_store(lambda: self._store.run_info(self._id), timeout=self._patience, what=what)
        if info is None:
            raise LookupError(self._unknown())
        return info

    async def cancel(self) -> bool:
        """Cancel the run: it ends ``cancelled`` at once, its queued steps never run, its running ones are cancelled.

        Returns:
            False when it had finished already (or no run has this id).

        Raises:
            StoreUnavailableError: the store stayed unreachable for the client's ``submit_timeout``.
        """
        what = f"cancelling run {self._id!r}"
        return await call_store(lambda: self._store.cancel_run(self._id), timeout=self._patience, what=what)

    def _unknown(self) -> str:
        return f"no run {self._id!r} in the store (never started, or purged after its result_ttl)"

    def __repr__(self) -> str:
        return f"<WorkflowRun id={self._id!r} workflow={self.workflow!r}>"
