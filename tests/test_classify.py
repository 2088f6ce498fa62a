"""Pure decisions of the engine: what a run's exception means (classify), what an idle worker does on waking."""

from __future__ import annotations

import asyncio
import math

import pytest

from tasker_async import PermanentError, RetryableError, TaskTimeoutError
from tasker_async._core.classify import Verdict, classify
from tasker_async._core.idle import IdleVerdict, idle_verdict


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


@pytest.mark.parametrize(
    ("now", "expires_at", "next_probe", "verdict"),
    [
        (10.0, 20.0, 30.0, IdleVerdict.SERVE),
        (20.0, 20.0, 30.0, IdleVerdict.RECYCLE),
        (30.0, 20.0, 30.0, IdleVerdict.RECYCLE),  # ageing out comes before a probe
        (30.0, math.inf, 30.0, IdleVerdict.PROBE),
        (29.9, math.inf, 30.0, IdleVerdict.SERVE),
        (1e9, math.inf, math.inf, IdleVerdict.SERVE),
    ],
)
def test_idle_verdict(now: float, expires_at: float, next_probe: float, verdict: IdleVerdict) -> None:
    assert idle_verdict(now, expires_at, next_probe) is verdict
