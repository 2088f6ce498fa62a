"""The store's Lua on the server: one library of functions (``FUNCTION LOAD``), one function per operation.

``jobs.lua`` holds the jobs' state machine, ``handoff.lua`` the hand-off to waiting consumers, the runs'
files (``machine.lua``, ``runs.lua``, ``run_calls.lua``) the workflows', ``listing.lua`` the listing reads;
each entry point below calls one step. The library's top level (every file's functions and tables) runs once,
when the server loads it; a script sent with ``EVALSHA`` ran it on every call, a third of the server's time
for a call that stores or completes one job.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from importlib import resources
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from ..._model.errors import DeadLetterError, JobCancelledError, JobLostError
from ..._model.records import qualified_name
from ..._model.workflow.payload import MARKER
from ..._model.workflow.records import RunEvent
from ..protocol import LOST_MESSAGE
from . import codec, heard

__all__ = ("Scripts",)

# What each function returns, after begin (jobs.lua) has taken its arguments; ARGV[1] is always the key prefix.
_ENTRIES = {
    "enqueue": "return flush(enqueue_many(frames(ARGV[2], 12)))",
    # The jobs handed and collected (handoff.lua), those claimed, and what a claim that came up short tells the
    # wait that follows (due_after).
    "claim": "local got, out = claim_waiting(2) return flush({got, out, due_after(2, #got + #out)})",
    "renew": "return renew(2)",
    "requeue_dead": "return flush(requeue_dead(ARGV[2]))",
    "purge": "return purge(tonumber(ARGV[2]))",
    # ARGV[2]: the fields to read (codec.INFO_FIELDS, space-separated); then the job ids.
    "infos": "local f, out = {}, {} for w in string.gmatch(ARGV[2], '%S+') do f[#f + 1] = w end "
    "for k = 3, #ARGV do out[#out + 1] = redis.call('HMGET', jk(ARGV[k]), unpack(f)) end return {NOWS, out}",
    "stats": "return stats(ARGV[2])",
    "queue_names": "local h, out = redis.call('HGETALL', P .. ':queues'), {} "
    "for k = 1, #h, 2 do if tonumber(h[k + 1]) > 0 then out[#out + 1] = h[k] end end return out",
    # Ready jobs, and the seconds until the next delayed one is due ('' when none is).
    "ready": "local c = counts(2, #ARGV - 1) local w = '' if c[4] ~= '' then w = num(tonumber(c[4]) - NOW) end "
    "return {c[1] + c[2], w}",
}
# The functions that can finish a job or touch a run (a step job's outcome goes to its run in the same call).
# Each returns its reply and the run events it made (kind, run id, workflow, at; flat).
_RUN_ENTRIES = {
    "complete": "local r = complete(frames(ARGV[2], 10)) return flush({r, run_events()})",
    "complete_and_claim": "local r = {complete(frames(ARGV[2], 10))} r[2], r[3] = claim_waiting(3) "
    "r[4] = due_after(3, #r[2] + #r[3]) return flush({r, run_events()})",
    "release": "local r = release(2) return flush({r, run_events()})",
    "leave": "local r = leave(2) return flush({r, run_events()})",
    "cancel": "local r = cancel(ARGV[2]) return flush({r, run_events()})",
    "reclaim": "local r = reclaim() return flush({r, run_events()})",
    "start_run": "local r = runs().start_run(fields(ARGV[2]), fields(ARGV[3]), frames(ARGV[4], 13)) "
    "return flush({r, run_events()})",
    "cancel_run": "local r = runs().cancel_run(ARGV[2]) return flush({r, run_events()})",
    "resume_run": "local r = runs().resume_run(ARGV[2]) return flush({r, run_events()})",
}
# Functions of runs that make no run events.
_RUN_OTHERS = {
    "run_look": "return runs().run_look(ARGV[2], ARGV[3])",
    "purge_runs": "return runs().purge_runs(tonumber(ARGV[2]))",
}
_RUN_FILES = ("machine.lua", "runs.lua", "run_calls.lua")
# The listing reads (listing.lua).
_LISTINGS = ("finished_jobs", "recent_runs")
# The library's name and its functions' begin with it, then the version.
_PREFIX = "tasker_"


def _lua_string(text: str) -> str:
    """``text`` as a Lua long-bracket literal (no escapes are interpreted inside one)."""
    level = "=" * 4
    if f"]{level}]" in text:
        raise ValueError(f"cannot quote {text!r} for Lua")
    return f"[{level}[{text}]{level}]"


def _source() -> str:
    """The library: every file's functions, then one registered function per entry point."""
    constants = {
        "LOST_TYPE": qualified_name(JobLostError),
        "LOST_MESSAGE": LOST_MESSAGE,
        "DEAD_TYPE": qualified_name(DeadLetterError),
        "ROW_LIMIT": str(heard.ROW_LIMIT),
        "STEP_MARKER": MARKER.decode(),
        "TYPE_ERROR": qualified_name(TypeError),
        "RUNTIME_ERROR": qualified_name(RuntimeError),
        "CANCELLED_TYPE": qualified_name(JobCancelledError),
    }
    header = "".join(f"local {name} = {_lua_string(value)}\n" for name, value in constants.items())
    folder = resources.files(__package__)

    def read(*names: str) -> str:
        return "\n".join(folder.joinpath(name).read_text(encoding="utf-8") for name in names)

    # handoff.lua defines what jobs.lua declares for it (every call may store a job, and so hand it). The
    # runs' files are one function's body: a call builds their functions only if it meets a run's job.
    body = f"{read('jobs.lua', 'handoff.lua')}\nload_runs = function()\n{read(*_RUN_FILES)}\nend\n{read('listing.lua')}"
    return f"{header}{body}\n"


@functools.cache
def _library() -> tuple[str, str]:
    """The library's code and its version: a digest of the code, in the library's and its functions' names.

    Each version is a library of its own on the server, so processes of two versions (a rolling deploy)
    share one server, each calling its own.
    """
    source = _source()
    version = hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest()[:12]
    entries = [*_ENTRIES.items(), *_RUN_ENTRIES.items(), *_RUN_OTHERS.items()]
    entries += [(name, f"return {name}()") for name in _LISTINGS]
    registered = "".join(
        f"redis.register_function('{_PREFIX}{version}_{name}', function(_, args) begin(args) {entry} end)\n"
        for name, entry in entries
    )
    return f"#!lua name={_PREFIX}{version}\n{source}{registered}", version


@dataclass(frozen=True, slots=True)
class Scripts:
    """The store's functions on one client: a library loaded once per server (and again if the server lost it)."""

    client: Redis
    version: str

    @classmethod
    async def load(cls, client: Redis) -> Scripts:
        """Load the library on the server behind ``client``, unless it is there already."""
        code, version = _library()
        try:
            await client.function_load(code)
        except ResponseError as exc:
            if "already exists" not in str(exc):
                raise
        return cls(client, version)

    async def run(self, name: str, args: list[Any]) -> tuple[Any, list[RunEvent]]:
        """Call function ``name`` with ``args`` (the key prefix first): its reply, and the run events it made."""
        function = f"{_PREFIX}{self.version}_{name}"
        try:
            reply = await self.client.fcall(function, 0, *args)
        except ResponseError as exc:
            if "function not found" not in str(exc).lower():
                raise
            # The server lost its functions (flushed, or restarted without the append-only file): load again.
            await Scripts.load(self.client)
            reply = await self.client.fcall(function, 0, *args)
        if name not in _RUN_ENTRIES:
            return reply, []
        reply, told = reply
        return reply, codec.run_events(told)
