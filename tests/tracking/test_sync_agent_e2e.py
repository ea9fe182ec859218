"""D5 end to end: the sync agent with the real `wandb sync` (wandb 0.31) against the W&B stand-in
(tests/helpers/wandb_server.py), on the runs a generated project trains.

1. Every run synced once: two finished training runs, a run still being written (a writer appending a
   row every 0.1 s) and a crashed one (SIGKILLed after wandb-core flushed some blocks). The finished
   runs are synced once each with every history row on the server; the live one not until it finishes;
   the crashed one only after the quiet period, as `partial`.
2. Crash recovery: the agent is killed with SIGKILL while a sync hangs in flight, then started again.
   Every run ends `synced`, once in the ledger, and every file under the watched folder has the sha256
   it had before the first agent started.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from validators.tracking import records
from validators.tracking.sync_ledger import SyncLedger, default_path

from ..helpers import render
from ..helpers.wandb_runs import BIN, LiveRun, age, offline_run
from ..helpers.wandb_server import Fault, WandbServer

pytestmark = pytest.mark.e2e
KEY = "local-" + "5" * 40
GRACE, PARTIAL_AFTER = 4, 20


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A generated project with two finished 1-epoch runs of its own training (W&B offline, the template's default)."""
    root = render(tmp_path_factory.mktemp("d5") / "demo_project", setup=False, task_family="tabular_regression",
                  logger="wandb")
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_") and k != "VIRTUAL_ENV"}
    for _ in range(2):
        done = subprocess.run([sys.executable, "scripts/train.py", "--epochs", "1"], cwd=root, env=env,
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stdout + done.stderr
    return root


def start_agent(watch: Path, server: WandbServer, home: Path) -> subprocess.Popen[str]:
    env = {"PATH": f"{BIN}:/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8", "WANDB_BASE_URL": server.url,
           "WANDB_API_KEY": KEY, "PYTHONPATH": str(Path(__file__).parents[2])}
    home.mkdir(exist_ok=True)
    args = ["--interval", "1", "--grace", str(GRACE), "--partial-after", str(PARTIAL_AFTER), "--backoff", "1", "--timeout", "120"]
    return subprocess.Popen([sys.executable, "-m", "validators", "sync-agent", "--watch", str(watch), *args], env=env,
                            cwd=home, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def ledger_rows(watch: Path) -> list:
    path = default_path(watch)
    if not path.exists():
        return []
    with SyncLedger.open(path) as ledger:
        return ledger.rows()


def wait_for(check, timeout: float, agent: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert agent.poll() is None, agent.communicate()[0]
        if time.monotonic() > deadline:
            agent.terminate()
            out = agent.communicate(timeout=120)[0]
            raise AssertionError(f"timed out; the agent said:\n{out[:4000]}\n...\n{out[-3000:]}")
        time.sleep(0.5)


def stop(agent: subprocess.Popen[str]) -> str:
    agent.send_signal(signal.SIGTERM)
    out, _ = agent.communicate(timeout=120)
    assert agent.returncode == 0, out
    return out


def snapshot(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def logged(run_dir: Path) -> records.RunLog:
    return records.read(records.run_file(next(run_dir.rglob("offline-run-*"))), keep_history=True)


def user_values(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if not k.startswith("_")} for row in rows]


def test_each_finished_run_is_synced_once_the_live_one_when_it_ends_the_crashed_one_as_partial(project, tmp_path):
    watch = project / "runs"
    trained = sorted(p for p in watch.iterdir() if p.is_dir() and not p.is_symlink())  # runs/latest links the newest: the
    # agent does not follow links, so that run is synced once, under its own folder
    crashed_dir = offline_run(watch / "crashed", rows=40, big=2000, kill_after=1).parent.parent
    live = LiveRun(watch / "live", stream_bytes=2000)
    crashed = logged(crashed_dir)
    assert not crashed.exited and crashed.history_rows > 0
    crashed_quiet_since = records.run_file(next(crashed_dir.rglob("offline-run-*"))).stat().st_mtime  # its last write
    with WandbServer(api_key=KEY) as server:
        agent = start_agent(watch, server, tmp_path / "home")
        try:
            wait_for(lambda: [r.state for r in ledger_rows(watch)][:2] == ["synced", "synced"], 180, agent)
            assert {r.run_path.split("/")[0] for r in ledger_rows(watch)} <= {p.name for p in trained} | {"crashed"}
            wait_for(lambda: any(r.state == "partial" for r in ledger_rows(watch)), 180, agent)
            partial = next(r for r in ledger_rows(watch) if r.state == "partial")
            assert partial.run_path.startswith("crashed/")
            assert time.time() - crashed_quiet_since >= PARTIAL_AFTER - 1   # not before its quiet period
            assert not any(r.run_path.startswith("live/") for r in ledger_rows(watch))  # still being written: never
            live.finish()
            wait_for(lambda: any(r.run_path.startswith("live/") and r.state == "synced" for r in ledger_rows(watch)),
                     180, agent)
            time.sleep(3)   # a few more passes: nothing is synced twice
        finally:
            out = stop(agent)
        rows = ledger_rows(watch)
        assert sorted((r.run_path.split("/")[0], r.state, r.attempts) for r in rows) == sorted(
            [(p.name, "synced", 1) for p in trained] + [("crashed", "partial", 1), ("live", "synced", 1)])
        for run_dir in [*trained, watch / "live"]:
            log = logged(run_dir)
            got = server.run(log.run_id)
            assert user_values(got.history) == user_values(log.history) and len(got.history) == log.history_rows
            assert (got.complete, got.exit_code, got.upserts) == (True, 0, 2)  # one sync: two upserts
            row = next(r for r in rows if r.run_id == log.run_id)
            assert row.url == f"{server.url}/researcher/{log.project}/runs/{log.run_id}"
        got = server.run(crashed.run_id)
        assert user_values(got.history) == user_values(crashed.history) and (got.complete, got.exit_code) == (True, 1)
    assert KEY not in out and KEY.encode() not in default_path(watch).read_bytes()
    assert "waiting: no exit record yet" in out and "live/" in out.split("waiting: being written")[0]


def test_a_killed_agent_is_restarted_every_run_ends_synced_once_and_no_file_changed(project, tmp_path):
    watch = tmp_path / "runs"
    for run_dir in sorted(p for p in (project / "runs").iterdir() if p.is_dir() and not p.is_symlink()
                          and p.name not in ("crashed", "live")):
        shutil.copytree(run_dir, watch / run_dir.name)
    age(watch, 3600)
    before = snapshot(watch)
    with WandbServer(api_key=KEY) as server:
        server.inject(Fault.hang(300), path="file_stream", body="wandb-history.jsonl")
        agent = start_agent(watch, server, tmp_path / "home")
        assert server.hung.wait(120)
        wait_for(lambda: [r.state for r in ledger_rows(watch)] == ["syncing"], 30, agent)
        agent.kill()                                   # kill -9, mid-upload
        agent.wait()
        assert [r.state for r in ledger_rows(watch)] == ["syncing"]
        agent = start_agent(watch, server, tmp_path / "home")
        try:
            wait_for(lambda: [r.state for r in ledger_rows(watch)] == ["synced", "synced"], 240, agent)
        finally:
            out = stop(agent)
        assert "syncing -> seen (the last agent stopped during this sync; syncing it again)" in out
        rows = ledger_rows(watch)
        assert [(r.state, r.attempts) for r in rows] == [("synced", 2), ("synced", 1)]
        assert len({r.run_path for r in rows}) == 2
        for run_dir in sorted(p for p in watch.iterdir() if p.is_dir()):
            log = logged(run_dir)
            got = server.run(log.run_id)
            assert user_values(got.history) == user_values(log.history) and (got.complete, got.exit_code) == (True, 0)
    assert snapshot(watch) == before                   # nothing under the watched folder changed, nothing was added
