"""The Lua scripts of ``RedisStore``: ``jobs.lua`` holds the state machine, each entry point calls one step."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from typing import Any

from redis.asyncio import Redis
from redis.commands.core import AsyncScript

from ..._model.errors import DeadLetterError, JobLostError
from ..._model.records import qualified_name
from ..protocol import LOST_MESSAGE

__all__ = ("Scripts",)

# What each script returns, after jobs.lua has defined its functions; ARGV[1] is always the key prefix.
_ENTRIES = {
    "enqueue": "return flush(enqueue_many(fields(ARGV[2])))",
    "claim": "return flush(claim(2))",
    "complete": "return flush(complete(fields(ARGV[2])))",
    "complete_and_claim": "return flush({complete(fields(ARGV[2])), claim(3)})",
    "renew": "return renew(2)",
    "release": "return flush(release(2))",
    "cancel": "return flush(cancel(ARGV[2]))",
    "reclaim": "return flush(reclaim())",
    "requeue_dead": "return flush(requeue_dead(ARGV[2]))",
    "purge": "return purge(tonumber(ARGV[2]))",
    # ARGV[2]: the fields to read (codec.INFO_FIELDS, space-separated); then the job ids.
    "infos": "local f, out = {}, {} for w in string.gmatch(ARGV[2], '%S+') do f[#f + 1] = w end "
    "for k = 3, #ARGV do out[#out + 1] = redis.call('HMGET', jk(ARGV[k]), unpack(f)) end return {NOWS, out}",
    "stats": "return stats(ARGV[2])",
    # Ready jobs, and the seconds until the next delayed one is due ('' when none is).
    "ready": "local c = counts(2, #ARGV - 1) local w = '' if c[4] ~= '' then w = num(tonumber(c[4]) - NOW) end "
    "return {c[1] + c[2], w}",
}


def _lua_string(text: str) -> str:
    """``text`` as a Lua long-bracket literal (no escapes are interpreted inside one)."""
    level = "=" * 4
    if f"]{level}]" in text:
        raise ValueError(f"cannot quote {text!r} for Lua")
    return f"[{level}[{text}]{level}]"


def _source(entry: str) -> str:
    constants = {
        "LOST_TYPE": qualified_name(JobLostError),
        "LOST_MESSAGE": LOST_MESSAGE,
        "DEAD_TYPE": qualified_name(DeadLetterError),
    }
    header = "".join(f"local {name} = {_lua_string(value)}\n" for name, value in constants.items())
    body = resources.files(__package__).joinpath("jobs.lua").read_text(encoding="utf-8")
    return f"{header}{body}\n{entry}\n"


@dataclass(frozen=True, slots=True)
class Scripts:
    """One registered script per store operation (sent by SHA, loaded again after a server restart)."""

    scripts: dict[str, AsyncScript]

    @classmethod
    def register(cls, client: Redis) -> Scripts:
        """Register every script on ``client`` (nothing is sent until a script first runs)."""
        return cls({name: client.register_script(_source(entry)) for name, entry in _ENTRIES.items()})

    async def run(self, name: str, args: list[Any]) -> Any:
        """Run script ``name`` with ``args`` (the key prefix first)."""
        return await self.scripts[name](keys=[], args=args)
