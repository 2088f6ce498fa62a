"""``python -m tasker_async worker`` and ``status`` as subprocesses, on a SQLite store in the test's folder."""

from __future__ import annotations

import importlib.util
import signal
from pathlib import Path

import anyio
import pytest

from tasker_async.__main__ import main
from tasker_async.durable import Client, JobInfo, UnknownTaskError, open_store

from . import cli_worker_mod as mod
from .cli_procs import ROOT, Workers, cli, status_json, wait_for, wait_until

pytestmark = pytest.mark.timeout(30)


def holder_pid(info: JobInfo) -> int:
    assert info.consumer is not None
    return int(info.consumer.rsplit(":", 2)[1])


async def test_a_worker_runs_the_jobs_submitted(client: Client, procs: Workers) -> None:
    worker = procs.start("--queue", "default")
    jobs = [await client.submit(mod.echo, {"n": n}) for n in range(3)]
    assert [await job.result(timeout=10) for job in jobs] == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert {holder_pid(await job.info()) for job in jobs} == {worker.pid}
    await worker.wait_serving()
    assert "tests.durable.cli_worker_mod" in worker.output()


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
async def test_the_loop_can_be_chosen(client: Client, procs: Workers, loop: str) -> None:
    worker = procs.start("--loop", loop)
    job = await client.submit(mod.echo, loop)
    assert await job.result(timeout=10) == loop
    await worker.wait_serving()
    assert f" on {loop}; " in worker.output()


async def test_the_default_loop_is_uvloop_when_installed(client: Client, procs: Workers) -> None:
    # uvloop comes with the test extra, as with most deployments that care for speed.
    worker = procs.start()
    assert await (await client.submit(mod.echo, 1)).result(timeout=10) == 1
    await worker.wait_serving()
    assert " on uvloop; " in worker.output()


async def test_module_colon_name_picks_the_registry(client: Client, procs: Workers) -> None:
    procs.start(target="tests.durable.cli_worker_mod:alt_registry")
    alt = await client.submit(mod.alt)
    assert await alt.result(timeout=10) == "from the other registry"
    echo = await client.submit(mod.echo, 1)  # not in that registry
    with pytest.raises(UnknownTaskError):
        await echo.result(timeout=10)


async def test_sigterm_drains_a_running_job_and_exits_0(client: Client, procs: Workers, tmp_path: Path) -> None:
    worker = procs.start()
    job = await client.submit(mod.hold, str(tmp_path), "drain")
    await wait_until(lambda: mod.marks(tmp_path, "drain") == [worker.pid])
    worker.signal(signal.SIGTERM)
    await worker.wait_output("draining")
    later = await client.submit(mod.echo, "after the drain began")
    assert (await job.info()).state == "running"
    assert worker.popen.poll() is None  # the running job holds the exit
    (tmp_path / "release").touch()
    assert await worker.wait_exit() == 0, worker.output()
    assert await job.result(timeout=5) == worker.pid
    info = await job.info()
    assert (info.state, info.deliveries) == ("succeeded", 1)
    assert (await later.info()).state == "queued"  # a draining worker takes nothing new
    assert "drained" in worker.output()


async def test_a_second_signal_kills_and_gives_the_job_back(client: Client, procs: Workers, tmp_path: Path) -> None:
    worker = procs.start()
    job = await client.submit(mod.hold, str(tmp_path), "kill")
    await wait_until(lambda: mod.marks(tmp_path, "kill") == [worker.pid])
    worker.signal(signal.SIGTERM)
    await worker.wait_output("draining")
    worker.signal(signal.SIGINT)
    code = await worker.wait_exit()
    assert code != 0
    assert code == 130, worker.output()
    info = await job.info()
    assert (info.state, info.deliveries) == ("queued", 1)  # given back at once, not left to its lease
    assert "killing" in worker.output()


async def test_a_signal_while_idle_exits_0(procs: Workers) -> None:
    worker = procs.start()
    await worker.wait_serving()
    worker.signal(signal.SIGINT)
    assert await worker.wait_exit() == 0, worker.output()


def test_uvloop_asked_for_but_missing_is_a_usage_error(
    url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "uvloop" else real(name, *a))
    assert main(["worker", "tests.durable.cli_worker_mod", "--store", url, "--loop", "uvloop"]) == 2
    assert "--loop uvloop: uvloop is not installed (pip install uvloop)" in capsys.readouterr().err


def test_a_missing_module_is_a_usage_error(url: str) -> None:
    done = cli("worker", "no_such_worker_module", "--store", url)
    assert done.returncode == 2
    assert "no module named 'no_such_worker_module'" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("source", "target", "message"),
    [
        ("config = None\n", "cli_tmp_mod", "module 'cli_tmp_mod' has no attribute 'registry'"),
        ("registry = {}\n", "cli_tmp_mod", "cli_tmp_mod.registry is of type dict, not a tasker_async.durable.Registry"),
        ("from tasker_async.durable import Registry\nregistry = Registry()\n", "cli_tmp_mod", "attribute 'config'"),
        (
            "from tasker_async.durable import Registry\nregistry = Registry()\nconfig = 4\n",
            "cli_tmp_mod",
            "cli_tmp_mod.config is of type int, not a tasker_async.Config",
        ),
        ("from tasker_async.durable import Registry\nregistry = Registry()\n", "cli_tmp_mod:tasks", "'tasks'"),
        ("raise RuntimeError('broken at import')\n", "cli_tmp_mod", "RuntimeError: broken at import"),
        ("import no_such_dependency\n", "cli_tmp_mod", "No module named 'no_such_dependency'"),
    ],
)
def test_a_bad_module_is_a_usage_error(tmp_path: Path, url: str, source: str, target: str, message: str) -> None:
    # The module lives in the current directory, as `python -m` finds it.
    (tmp_path / "cli_tmp_mod.py").write_text(source, encoding="utf-8")
    done = cli("worker", target, "--store", url, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr


def test_a_bad_store_url_is_a_usage_error() -> None:
    for args in (["worker", "tests.durable.cli_worker_mod"], ["status"]):
        done = cli(*args, "--store", "nosuch://somewhere")
        assert done.returncode == 2, done.stderr
        assert "nosuch" in done.stderr
        assert "Traceback" not in done.stderr


async def _busy_store(client: Client, procs: Workers, tmp_path: Path) -> int:
    """A worker running one job, one more queued, one delayed, two in a queue nobody serves; the worker's pid."""
    worker = procs.start("--queue", "default", "--concurrency", "1")
    await client.submit(mod.hold, str(tmp_path), "status")
    await wait_until(lambda: len(mod.marks(tmp_path, "status")) == 1)
    await client.submit(mod.echo, "waits for the busy worker")
    await client.submit(mod.echo, "later", delay=600)
    for _ in range(2):
        await client.submit(mod.elsewhere)

    async def heartbeat_shows_it_running() -> bool:
        consumers = (await client.stats()).consumers
        return [(c.pid, c.running) for c in consumers] == [(worker.pid, 1)]

    await wait_for(heartbeat_shows_it_running)
    return worker.pid


async def test_status_json(client: Client, procs: Workers, tmp_path: Path, url: str) -> None:
    pid = await _busy_store(client, procs, tmp_path)
    document = status_json(url)
    assert set(document) == {"queues", "consumers"}
    assert document["queues"] == {
        "cli_elsewhere": {"ready_priority": 0, "ready_main": 2, "delayed": 0, "running": 0, "dead": 0},
        "default": {"ready_priority": 0, "ready_main": 1, "delayed": 1, "running": 1, "dead": 0},
    }
    [consumer] = document["consumers"]
    assert set(consumer) == {"id", "host", "pid", "capacity", "running", "heartbeat_age"}
    assert (consumer["pid"], consumer["capacity"], consumer["running"]) == (pid, 1, 1)
    assert consumer["id"].startswith(f"{consumer['host']}:{pid}:")
    assert 0 <= consumer["heartbeat_age"] < 15


async def test_status_table(client: Client, procs: Workers, tmp_path: Path, url: str) -> None:
    pid = await _busy_store(client, procs, tmp_path)
    done = cli("status", "--store", url)
    assert done.returncode == 0, done.stderr
    queues, consumers = done.stdout.rstrip("\n").split("\n\n")
    assert queues.splitlines() == [
        "QUEUE          PRIORITY  MAIN  DELAYED  RUNNING  DEAD",
        "cli_elsewhere         0     2        0        0     0",
        "default               0     1        1        1     0",
    ]
    header, row = consumers.splitlines()
    assert header.split() == ["CONSUMER", "HOST", "PID", "CAPACITY", "RUNNING", "HEARTBEAT"]
    assert row.split()[2:5] == [str(pid), "1", "1"]
    assert row.endswith(" s ago")
    assert len(header) == len(row)  # the columns line up


async def _make_store(url: str) -> None:
    async with open_store(url):
        pass


def test_status_of_an_empty_store(url: str) -> None:
    anyio.run(_make_store, url)  # status only reads: it makes no store where there is none
    done = cli("status", "--store", url)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["no queues: the store holds no job", "", "no consumers heard from lately"]
    assert status_json(url) == {"queues": {}, "consumers": []}


def test_help_lists_the_commands() -> None:
    done = cli("--help", cwd=ROOT)
    assert done.returncode == 0
    for command in ("demo", "worker", "status"):
        assert command in done.stdout
