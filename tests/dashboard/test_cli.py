"""``python -m tasker_async dashboard``: serves on the URL it prints, stops cleanly on a signal, explains failures."""

from __future__ import annotations

import io
import signal
import socket
import sys
from pathlib import Path

import httpx
import pytest

from tasker_async.__main__ import main
from tasker_async._cli import dashboard as command
from tasker_async.durable import Client, SQLiteStore

from . import _seed
from ._server import dashboard


async def make_store(tmp_path: Path) -> str:
    db = tmp_path / "tasker.db"
    async with SQLiteStore(db) as store, Client(store) as client:
        await _seed.queued(client, 2)
    return f"sqlite:///{db}"


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_it_serves_on_the_printed_url_and_a_signal_ends_it_with_0_even_with_a_stream_open(
    tmp_path: Path, signum: signal.Signals
) -> None:
    url = await make_store(tmp_path)
    with dashboard(tmp_path, url, "--interval", "0.1") as served:
        base = await served.ready()
        assert base.startswith("http://127.0.0.1:")
        assert "(read-only)" in served.output()
        async with httpx.AsyncClient(timeout=_seed.DEADLINE) as http:
            status = (await http.get(base + "api/status")).json()
            async with http.stream("GET", base + "api/events") as events:
                lines = events.aiter_lines()
                while await anext(lines) != "event: overview":
                    pass
                assert '"ready_main":2' in await anext(lines)
                code = await served.stop(signum)
                async for _ in lines:  # the stream ends: the server finished its body before it exited
                    pass
                consumed = events.is_stream_consumed
    assert status["queues"]["mail"]["ready_main"] == 2
    assert code == 0, served.output()
    assert f"{signum.name}: stopping" in served.output()
    assert "Traceback" not in served.output()
    assert consumed


async def test_the_token_comes_from_the_environment_and_guards_the_actions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = await make_store(tmp_path)
    monkeypatch.setenv(command.TOKEN_ENV, "from-env")
    with dashboard(tmp_path, url, "--allow-actions") as served:
        base = await served.ready()
        async with httpx.AsyncClient(timeout=_seed.DEADLINE) as http:
            without = await http.post(base + "api/jobs/nope/requeue", headers={"content-type": "application/json"})
            with_it = await http.post(base + "api/jobs/nope/requeue", headers={"authorization": "Bearer from-env"})
            overview = (await http.get(base + "api/overview")).json()
        assert await served.stop() == 0
    assert "(actions allowed, token required)" in served.output()
    assert "from-env" not in served.output()
    assert (without.status_code, with_it.status_code) == (401, 404)
    assert overview["actions"] == {"allowed": True, "token": True}


async def test_a_port_in_use_ends_it_with_1(tmp_path: Path) -> None:
    url = await make_store(tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with dashboard(tmp_path, url, "--port", str(port)) as served:
            code = await served.wait_exit()
    assert code == 1, served.output()
    assert "address already in use" in served.output().lower()


def test_a_store_that_is_not_there_is_told_in_a_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nowhere.db"
    out = io.StringIO()
    code = command.run(
        store_url=f"sqlite:///{missing}",
        host="127.0.0.1",
        port=0,
        allow_actions=False,
        token=None,
        interval=1.0,
        out=out,
    )
    assert code == 1
    assert capsys.readouterr().err.startswith("error: the store is unavailable:")
    assert not missing.exists()  # the dashboard only looks: it makes no store


def test_without_the_extra_it_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # as if it were not installed: importing it fails
    code = command.run(
        store_url="memory://",
        host="127.0.0.1",
        port=0,
        allow_actions=False,
        token=None,
        interval=1.0,
        out=io.StringIO(),
    )
    assert code == 2
    assert "pip install 'tasker-async[dashboard]'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--port", "70000"], "expected a port from 0 to 65535, got 70000"),
        (["--port", "web"], "expected a port number, got 'web'"),
        (["--interval", "0"], "expected a finite number of seconds > 0, got 0"),
        (["--interval", "nan"], "expected a finite number of seconds > 0, got nan"),
    ],
)
def test_bad_arguments_are_refused_with_a_clear_message(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["dashboard", *args])
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


def test_a_warning_when_anyone_on_the_network_could_act() -> None:
    assert command.is_loopback("127.0.0.1")
    assert command.is_loopback("::1")
    assert command.is_loopback("localhost")
    assert not command.is_loopback("0.0.0.0")
    assert not command.is_loopback("dashboard.internal")
