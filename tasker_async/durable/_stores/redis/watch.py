"""One pub/sub listener per store object: wakes the local waiters for results and for ready jobs."""

from __future__ import annotations

import asyncio
import contextlib
import random
from typing import Any

import anyio
from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from ..waiting import Waiters
from .handed import Handed
from .heard import HeardOutcomes

__all__ = ("Watch",)


def _retrieved(task: asyncio.Task[Any]) -> None:
    if not task.cancelled():
        task.exception()  # retrieved, so asyncio does not report it


# Backoff between attempts to subscribe again after the server went away.
_RETRY_FIRST = 0.05
_RETRY_CAP = 1.0


class Watch:
    """Listens on the done, ready, later and cancel channels, and its waiting consumers', and wakes the waiters.

    Waiters register an event, then check the engine, then wait: a message sent after the check
    sets the event. After every (re)subscription every waiter is woken to check again, since
    messages sent while the listener was away are lost.
    """

    def __init__(self, client: Redis, prefix: str, handed: Handed) -> None:
        self._client = client
        self._done_channel = f"{prefix}:done".encode()
        self._ready_channel = f"{prefix}:ready".encode()
        self._later_channel = f"{prefix}:later".encode()
        self._cancel_channel = f"{prefix}:cancel".encode()
        self._channels = (self._done_channel, self._ready_channel, self._later_channel, self._cancel_channel)
        # The jobs handed to a consumer (handoff.lua) are told on a channel of its own, which only the store
        # object of a consumer that waits listens on: no other process hears of them. A consumer offers to
        # take jobs only once the server has confirmed that subscription, so none of its messages goes unheard.
        self._handed_prefix = f"{prefix}:handed-to:".encode()
        self._handed_channels: dict[str, bytes] = {}
        self._confirmed: set[bytes] = set()
        self._pubsub: PubSub | None = None
        self._sending: set[asyncio.Task[Any]] = set()
        # Where the jobs handed to this object's waiting consumers are kept (handed.py).
        self.handed = handed
        # The events of the store object's waiters, which the messages set.
        self.waiters = Waiters()
        # The snapshots the end messages tell, of the jobs the waiters want (heard.py).
        self.outcomes = HeardOutcomes()
        self._task: asyncio.Task[None] | None = None
        self.subscribed = anyio.Event()
        # Subscribed now, as far as the listener knows: what it hears from here on is all that is published.
        self.listening = False

    def hears_handed(self, consumer: str) -> bool:
        """Whether the jobs handed to ``consumer`` are heard of now; if not yet, start listening for them."""
        channel = self._handed_channels.get(consumer)
        if channel is None:
            channel = self._handed_channels[consumer] = self._handed_prefix + consumer.encode()
            self._send("subscribe", channel)
        return self.listening and channel in self._confirmed

    def stop_hearing_handed(self, consumer: str) -> None:
        """Stop listening for the jobs handed to ``consumer`` (it left)."""
        channel = self._handed_channels.pop(consumer, None)
        if channel is not None:
            self._confirmed.discard(channel)
            self._send("unsubscribe", channel)

    def _send(self, command: str, channel: bytes) -> None:
        """(Un)subscribe ``channel`` on the listener's connection; without one, its next subscription sees to it."""
        pubsub = self._pubsub
        if pubsub is not None:
            task = asyncio.get_running_loop().create_task(getattr(pubsub, command)(channel))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)
            task.add_done_callback(_retrieved)  # a lost connection: the listener subscribes again, with it

    def start(self) -> None:
        """Start listening (in a task of the running loop: redis-py's asyncio client needs asyncio)."""
        self._task = asyncio.get_running_loop().create_task(self._listen())

    async def close(self) -> None:
        """Stop listening."""
        for sending in list(self._sending):
            sending.cancel()
        task, self._task = self._task, None
        # redis-py may swallow a cancellation that lands while it reads (the task then waits on
        # the socket again): cancel again until the task has ended.
        while task is not None and not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=0.05)
        if task is not None and not task.cancelled():
            task.exception()  # retrieved, so asyncio does not report it

    def _deliver(self, channel: bytes, data: bytes) -> None:
        if channel == self._done_channel:
            # One message per script: the ids, space-separated; then, after a newline, snapshots (heard.py),
            # kept before the waiters wake so that their look finds them.
            ids, _, told = data.partition(b"\n")
            if told and self.waiters.wants_any():  # a consumer's store object, say, waits for no job
                self.outcomes.keep(told, self.waiters.wants)
            self.waiters.finished(ids.decode().split(" "))
        elif channel == self._ready_channel:
            self.waiters.became_ready(data.decode())
        elif channel == self._later_channel:
            self.waiters.became_ready(data.decode(), now=False)
        elif channel == self._cancel_channel:
            self.waiters.cancels.told([data.decode()])
        elif channel.startswith(self._handed_prefix):
            for queue in self.handed.heard(data):
                self.waiters.handed(queue)

    async def _listen(self) -> None:
        delay = _RETRY_FIRST
        while True:
            pubsub = self._pubsub = self._client.pubsub()
            try:
                # A consumer that begins to wait meanwhile subscribes its own channel after these (_send).
                await pubsub.subscribe(*self._channels, *self._handed_channels.values())
                self.waiters.wake_all()
                self.listening = True
                self.subscribed.set()
                delay = _RETRY_FIRST
                async for message in pubsub.listen():
                    if message["type"] == "message":
                        self._deliver(message["channel"], message["data"])
                    elif message["type"] == "subscribe" and message["channel"].startswith(self._handed_prefix):
                        self._confirmed.add(message["channel"])
            except (RedisError, OSError):
                pass  # the server went away: subscribe again after a pause
            finally:
                # Messages go unheard until the next subscription: nothing stored meanwhile is expected, and
                # no consumer offers to take jobs.
                self.listening = False
                self._pubsub = None
                self._confirmed.clear()
                self.waiters.expected.forget()
                with anyio.CancelScope(shield=True):
                    with contextlib.suppress(RedisError, OSError):
                        await pubsub.aclose()  # type: ignore[no-untyped-call]  # redis-py leaves it untyped
            await anyio.sleep(delay * (0.5 + random.random()))
            delay = min(_RETRY_CAP, delay * 2)
