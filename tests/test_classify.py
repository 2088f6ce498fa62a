"""classify: what a run's exception means, decided without an event loop, for the queues and run_task alike."""

from __future__ import annotations

import asyncio

import pytest

from tasker_async import PermanentError, RetryableError, TaskTimeoutError
from tasker_async._classify import Verdict, classify


@pytest.mark.parametrize(
    ("exc", "caller_cancelled", "killed", "verdict"),
    [
        (asyncio.CancelledError(), True, False, Verdict.CANCELLED),
        (asyncio.CancelledError(), True, True, Verdict.CANCELLED),  # the caller's answer was given first
        (asyncio.CancelledError(), False, True, Verdict.ABORTED),
        (asyncio.CancelledError(), False, False, Verdict.SELF_CANCELLED),
        (KeyboardInterrupt(), False, False, Verdict.EXIT),
        (SystemExit(1), True, True, Verdict.EXIT),
        (PermanentError("no"), False, False, Verdict.PERMANENT),
        (RetryableError("later"), False, False, Verdict.RETRY),
        (ValueError("bad"), False, False, Verdict.JUDGE),
        (TaskTimeoutError(1.0), False, False, Verdict.JUDGE),
        (ValueError("cleanup failed"), True, False, Verdict.JUDGE),
    ],
)
def test_classify(exc: BaseException, caller_cancelled: bool, killed: bool, verdict: Verdict) -> None:
    assert classify(exc, caller_cancelled=caller_cancelled, killed=killed) is verdict
