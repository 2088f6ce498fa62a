"""``queue_task_with_callback``: queue a task and return at once; its outcome always reaches the callback."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import ManagerNotRunningError, QueueFullError, ResourceCreationError
from .checks import call_back_from_anywhere

if TYPE_CHECKING:
    from .base import ManagerBase
    from .callbacks import ResultCallback
    from .submission import Submission

__all__ = ("submit_with_callback",)


def submit_with_callback(manager: ManagerBase[Any], submission: Submission, callback: ResultCallback) -> None:
    """Queue ``submission`` on ``manager``; ``callback(result, exc)`` gets its outcome, exactly once.

    See ``AsyncManager.queue_task_with_callback``, which has checked the task function and the timeout.
    """
    rt = manager._rt
    error = manager._caller_error("queue_task_with_callback")
    if error is not None:
        call_back_from_anywhere(rt.loop, manager._callbacks, callback, error, rt.log)
        return
    try:
        handle = submission.now(manager)
    except QueueFullError:
        manager._callbacks.spawn(_submit_later(manager, submission, callback))
    else:
        manager._callbacks.deliver(handle, callback)


async def _submit_later(manager: ManagerBase[Any], submission: Submission, callback: ResultCallback) -> None:
    try:
        handle = await submission.when_room(manager)
    except (ManagerNotRunningError, ResourceCreationError) as exc:
        manager._callbacks.call(callback, None, exc)
    else:
        manager._callbacks.deliver(handle, callback)
