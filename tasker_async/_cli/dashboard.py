"""``python -m tasker_async dashboard``: serve the live dashboard of a store with uvicorn until SIGINT or SIGTERM.

The first signal ends the open event streams and stops the server (exit 0); a second one forces it.
"""

from __future__ import annotations

import ipaddress
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TextIO

import anyio

from ..durable import open_store
from .failures import TOLD, tell

if TYPE_CHECKING:
    import uvicorn

__all__ = ("MISSING_EXTRA", "TOKEN_ENV", "is_loopback", "run")

MISSING_EXTRA = "the dashboard needs Starlette and uvicorn: pip install 'tasker-async[dashboard]'"
TOKEN_ENV = "TASKER_DASHBOARD_TOKEN"


def is_loopback(host: str) -> bool:
    """Whether ``host`` is only reachable from this machine (``localhost``, 127.0.0.0/8, ``::1``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _server(app: Any, host: str, port: int) -> uvicorn.Server:
    """A uvicorn server that leaves the signals to this command (it handles them itself, see ``_serve``)."""
    import uvicorn

    class Server(uvicorn.Server):
        @contextmanager
        def capture_signals(self) -> Iterator[None]:
            # uvicorn would put its own handlers in and raise the signal again once stopped (so SIGTERM would
            # end the process by the signal, not with exit 0): the command's signal receiver does it instead.
            yield

    config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False, lifespan="on")
    return Server(config)


def _url(server: uvicorn.Server, host: str) -> str:
    """The address the server listens on (the port the system chose, for ``--port 0``)."""
    port = server.servers[0].sockets[0].getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/"


async def _serve_until_done(server: uvicorn.Server, scope: anyio.CancelScope) -> None:
    """Run the server; once it has stopped, end the command's wait for signals."""
    try:
        await server.serve()
    except SystemExit:  # uvicorn exits so when it cannot start (the port is taken, say), having logged why
        server.should_exit = True
    finally:
        scope.cancel()


async def _serve(store_url: str, host: str, port: int, options: dict[str, Any], out: TextIO) -> int:
    from ..dashboard import create_app, stop_streams

    async with open_store(store_url, create=False) as store:
        app = create_app(store, **options)
        server = _server(app, host, port)
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as received:
            async with anyio.create_task_group() as group:
                group.start_soon(_serve_until_done, server, group.cancel_scope)
                while not server.started:  # noqa: ASYNC110 - uvicorn offers no event for it
                    await anyio.sleep(0.01)  # (cancelled, with the rest, if the server cannot start)
                _announce(out, _url(server, host), options)
                async for signum in received:
                    # The open event streams end first: the server waits for its open responses to finish.
                    stop_streams(app)
                    if server.should_exit:
                        server.force_exit = True  # a second signal: stop waiting for the rest
                    else:
                        out.write(f"{signal.Signals(signum).name}: stopping\n")
                        out.flush()
                        server.should_exit = True
    # Not started: uvicorn could not listen (it logged why).
    return 0 if server.started else 1


def _announce(out: TextIO, url: str, options: dict[str, Any]) -> None:
    mode = "actions allowed" if options["allow_actions"] else "read-only"
    token = ", token required" if options["token"] else ""
    out.write(f"dashboard serving {url} ({mode}{token}); Ctrl-C stops\n")
    out.flush()


def run(
    *,
    store_url: str,
    host: str,
    port: int,
    allow_actions: bool,
    token: str | None,
    interval: float,
    out: TextIO,
) -> int:
    """Serve the dashboard until SIGINT or SIGTERM; return the exit code (2 without the extra or for bad input).

    Args:
        store_url: what ``open_store`` takes.
        host: the address to listen on.
        port: the port (0: one the system chooses; the printed URL says which).
        allow_actions: offer requeue, cancel and resume.
        token: when set, actions need ``Authorization: Bearer TOKEN``.
        interval: seconds between two reads of the store.
        out: where the URL is printed.
    """
    try:
        import starlette  # noqa: F401 - only to learn whether the extra is installed
        import uvicorn  # noqa: F401
    except ImportError:
        sys.stderr.write(f"error: {MISSING_EXTRA}\n")
        return 2
    if not is_loopback(host) and allow_actions and token is None:
        sys.stderr.write(f"warning: actions are allowed to anyone who reaches {host}: set --token (or {TOKEN_ENV})\n")
    options = {"allow_actions": allow_actions, "token": token, "interval": interval}
    try:
        return anyio.run(_serve, store_url, host, port, options, out)
    except TOLD as exc:
        return tell(exc)
    except KeyboardInterrupt:  # before the signal receiver was in place
        return 130
