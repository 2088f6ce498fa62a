"""The Lua scripts of ``RedisStore``: ``jobs.lua`` holds the jobs' state machine, each entry point calls one step.

A script that can finish a job or touches runs loads the runs' Lua too (``machine.lua``, ``runs.lua``,
``run_calls.lua``), so a step job's outcome goes to its run in the same script. The listing reads load
``listing.lua`` besides.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from typing import Any

from redis.asyncio import Redis
from redis.commands.core import AsyncScript

from ..._model.errors import DeadLetterError, JobCancelledError, JobLostError
from ..._model.records import qualified_name
from ..._model.workflow.payload import MARKER
from ..._model.workflow.records import RunEvent
from ..protocol import LOST_MESSAGE
from . import codec, heard

__all__ = ("Scripts",)

# What each script returns, after jobs.lua has defined its functions; ARGV[1] is always the key prefix.
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
# The scripts that can finish a job or touch a run: they load the runs' Lua too (a step job's outcome goes to
# its run in the same script), the others stay as small as they were. Each returns its reply and the run
# events it made (kind, run id, workflow, at; flat).
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
# Scripts of runs that make no run events.
_RUN_OTHERS = {
    "run_look": "return runs().run_look(ARGV[2], ARGV[3])",
    "purge_runs": "return runs().purge_runs(tonumber(ARGV[2]))",
}
_RUN_FILES = ("machine.lua", "runs.lua", "run_calls.lua")
# The listing reads (listing.lua): whether each needs the runs' Lua.
_LISTINGS = {"finished_jobs": False, "recent_runs": True}


def _lua_string(text: str) -> str:
    """``text`` as a Lua long-bracket literal (no escapes are interpreted inside one)."""
    level = "=" * 4
    if f"]{level}]" in text:
        raise ValueError(f"cannot quote {text!r} for Lua")
    return f"[{level}[{text}]{level}]"


def _source(entry: str, *, runs: bool, listing: bool = False) -> str:
    constants = {
        "LOST_TYPE": qualified_name(JobLostError),
        "LOST_MESSAGE": LOST_MESSAGE,
        "DEAD_TYPE": qualified_name(DeadLetterError),
        "ROW_LIMIT": str(heard.ROW_LIMIT),
    }
    if runs:
        constants |= {
            "STEP_MARKER": MARKER.decode(),
            "TYPE_ERROR": qualified_name(TypeError),
            "RUNTIME_ERROR": qualified_name(RuntimeError),
            "CANCELLED_TYPE": qualified_name(JobCancelledError),
        }
    header = "".join(f"local {name} = {_lua_string(value)}\n" for name, value in constants.items())
    folder = resources.files(__package__)
    # handoff.lua defines what jobs.lua declares for it (every script may store a job, and so hand it).
    body = "\n".join(folder.joinpath(name).read_text(encoding="utf-8") for name in ("jobs.lua", "handoff.lua"))
    if runs:
        # The runs' files are one function's body: a script builds their functions only if it needs them.
        loader = "\n".join(folder.joinpath(name).read_text(encoding="utf-8") for name in _RUN_FILES)
        body = f"{body}\nload_runs = function()\n{loader}\nend\n"
    if listing:
        body = f"{body}\n{folder.joinpath('listing.lua').read_text(encoding='utf-8')}"
    return f"{header}{body}\n{entry}\n"


@dataclass(frozen=True, slots=True)
class Scripts:
    """One registered script per store operation (sent by SHA, loaded again after a server restart)."""

    scripts: dict[str, AsyncScript]

    @classmethod
    def register(cls, client: Redis) -> Scripts:
        """Register every script on ``client`` (nothing is sent until a script first runs)."""
        scripts = {name: client.register_script(_source(entry, runs=False)) for name, entry in _ENTRIES.items()}
        runs = _RUN_ENTRIES | _RUN_OTHERS
        scripts |= {name: client.register_script(_source(entry, runs=True)) for name, entry in runs.items()}
        for name, with_runs in _LISTINGS.items():
            scripts[name] = client.register_script(_source(f"return {name}()", runs=with_runs, listing=True))
        return cls(scripts)

    async def run(self, name: str, args: list[Any]) -> tuple[Any, list[RunEvent]]:
        """Run script ``name`` with ``args`` (the key prefix first): its reply, and the run events it made."""
        reply = await self.scripts[name](keys=[], args=args)
        if name not in _RUN_ENTRIES:
            return reply, []
        reply, told = reply
        return reply, codec.run_events(told)
