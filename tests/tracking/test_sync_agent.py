"""The sync agent's logic on real offline runs, with a recording `wandb` command in place of the CLI.

The real `wandb sync` against a stand-in W&B server is exercised by test_sync_agent_e2e.py; here a
small executable records each call, so the decisions (what is synced, when, how often, as what)
are checked quickly and exactly.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from validators.tracking import agent as agent_mod
from validators.tracking.agent import Settings, run
from validators.tracking.sync_ledger import LedgerError, SyncLedger, default_path, lock

from ..helpers.wandb_runs import LiveRun, age, offline_run

KEY = "0123456789abcdef0123456789abcdef01234567"

FAKE = r"""#!{python}
# What wandb 0.31's `wandb sync` prints and returns (tests/helpers/wandb_server.py lists it), on demand.
import hashlib, json, os, pathlib, sys, time
folder = pathlib.Path(sys.argv[-1])
wandb_file = next(folder.glob("run-*.wandb"))
run_id = wandb_file.stem[4:]
with open(os.environ["FAKE_WANDB_CALLS"], "a") as log:
    log.write(json.dumps({{"argv": sys.argv[1:], "run": run_id, "key_set": "WANDB_API_KEY" in os.environ,
                          "sha256": hashlib.sha256(wandb_file.read_bytes()).hexdigest()}}) + "\n")
mode = os.environ.get("FAKE_WANDB_MODE", "ok")
print(f"wandb: Syncing 1 run(s):\nwandb:   {{wandb_file.name}}", file=sys.stderr)
if mode == "hang":
    time.sleep(600)
if mode == "exit1":
    sys.exit("Error: WANDB_API_KEY invalid: API key must have 40+ characters, has 5.")
if mode == "refused":   # the real CLI exits 0 when the server refuses the key (the key echoed: the agent must scrub it)
    print("wandb: ERROR user is not logged in (key " + os.environ.get("WANDB_API_KEY", "") + ")", file=sys.stderr)
    sys.exit(0)
(folder / (wandb_file.name + ".synced")).touch()   # what the real CLI leaves beside the file it synced
url = f"http://127.0.0.1:1/entity/standin-project/runs/{{run_id}}"
print(f"wandb: [standin-project/{{run_id}}] View run {{run_id}} at {{url}}\n"
      f"wandb: [standin-project/{{run_id}}] Finished syncing {{folder}}", file=sys.stderr)
"""


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two finished runs and one crashed run, made once (each takes a second of wandb start-up)."""
    root = tmp_path_factory.mktemp("made")
    return {"a": offline_run(root / "a"), "b": offline_run(root / "b", rows=3), "crashed": offline_run(root / "c", kill_after=1)}


@pytest.fixture
def cli(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "wandb"
    fake.write_text(FAKE.format(python=sys.executable))
    fake.chmod(0o755)
    calls = tmp_path / "calls.jsonl"
    monkeypatch.setenv("FAKE_WANDB_CALLS", str(calls))
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("WANDB_API_KEY", KEY)
    monkeypatch.delenv("WANDB_CLI", raising=False)
    return lambda: [json.loads(line) for line in calls.read_text().splitlines()] if calls.exists() else []


def watched(tmp_path: Path, runs: dict[str, Path], *names: str) -> Path:
    """A watched folder holding copies of `names` as <name>/wandb/offline-run-*/, quiet for an hour."""
    import shutil

    watch = tmp_path / "runs"
    for name in names:
        shutil.copytree(runs[name], watch / name / "wandb" / runs[name].name)
    age(watch, 3600)
    return watch


def snapshot(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def settings(watch: Path, **kw) -> Settings:
    base = dict(grace_s=5, partial_after_s=600, timeout_s=20, attempts=3, backoff_s=0.0)
    return Settings(watch=watch, ledger=default_path(watch), **{**base, **kw})


def rows(watch: Path) -> list[tuple[str, str, str, int]]:
    with SyncLedger.open(default_path(watch)) as ledger:
        return [(r.run_path.split("/")[0], r.run_id, r.state, r.attempts) for r in ledger.rows()]


def test_each_finished_run_is_synced_once_and_the_watched_folder_is_untouched(tmp_path, runs, cli, capsys):
    watch = watched(tmp_path, runs, "a", "b")
    before = snapshot(watch)
    assert run(settings(watch), once=True) == 0
    assert run(settings(watch), once=True) == 0   # a second pass finds nothing new
    ids = {name: runs[name].name.rsplit("-", 1)[1] for name in ("a", "b")}
    assert sorted(c["run"] for c in cli()) == sorted(ids.values())
    assert all(c["argv"][0] == "sync" and c["key_set"] for c in cli())
    assert rows(watch) == [("a", ids["a"], "synced", 1), ("b", ids["b"], "synced", 1)]
    with SyncLedger.open(default_path(watch)) as ledger:
        assert [r.url for r in ledger.rows()] == [f"http://127.0.0.1:1/entity/standin-project/runs/{ids[n]}" for n in "ab"]
        assert [r.sha256 for r in ledger.rows()] == [before[f"{n}/wandb/{runs[n].name}/run-{ids[n]}.wandb"] for n in "ab"]
    assert snapshot(watch) == before   # nothing written, moved or deleted; the CLI's marker landed in the copy
    out = capsys.readouterr().out
    assert f"a/wandb/{runs['a'].name}/run-{ids['a']}.wandb: syncing -> synced (http://127.0.0.1:1/" in out
    assert KEY not in out


def test_a_run_being_written_waits_and_a_crashed_run_is_partial_after_the_quiet_period(tmp_path, runs, cli, capsys):
    watch = watched(tmp_path, runs, "a", "crashed")
    crashed = next((watch / "crashed").rglob("run-*.wandb"))
    os.utime(crashed)                                  # just written
    run(settings(watch, grace_s=60), once=True)
    assert [c["run"] for c in cli()] == [runs["a"].name.rsplit("-", 1)[1]]
    assert "crashed/wandb/" in capsys.readouterr().out.split("waiting: being written")[0]
    age(crashed, 120)                                  # quiet past the grace, not yet past partial_after
    run(settings(watch, grace_s=60, partial_after_s=600), once=True)
    assert len(cli()) == 1
    assert "waiting: no exit record yet (synced as partial once unchanged for 600 s)" in capsys.readouterr().out
    age(crashed, 700)
    run(settings(watch, grace_s=60, partial_after_s=600), once=True)
    assert [row[2] for row in rows(watch)] == ["synced", "partial"]
    assert len(cli()) == 2


def test_a_live_run_is_synced_partial_then_again_when_it_finishes_and_both_contents_stay(tmp_path, cli):
    watch = tmp_path / "runs"
    live = LiveRun(watch / "job")
    wandb_file = next(live.folder.glob("run-*.wandb"))
    age(live.folder, 700)
    run(settings(watch, grace_s=60, partial_after_s=600), once=True)
    live.finish()
    run(settings(watch, grace_s=0.01), once=True)
    run_id = wandb_file.stem[4:]
    assert rows(watch) == [("job", run_id, "partial", 1), ("job", run_id, "synced", 1)]
    assert [c["sha256"] for c in cli()][1] == hashlib.sha256(wandb_file.read_bytes()).hexdigest()


def test_failures_back_off_then_park_the_run_until_retry(tmp_path, runs, cli, monkeypatch, capsys):
    watch = watched(tmp_path, runs, "a")
    monkeypatch.setenv("FAKE_WANDB_MODE", "refused")
    for _ in range(3):
        run(settings(watch), once=True)
    assert rows(watch)[0][2:] == ("failed", 3)
    with SyncLedger.open(default_path(watch)) as ledger:
        error = ledger.rows()[0].last_error
    assert error == "wandb sync reported: user is not logged in (key <WANDB_API_KEY>)"
    run(settings(watch), once=True)                     # parked: not tried again
    assert len(cli()) == 3
    status = cli_run(watch, "status")
    assert status.returncode == 1 and "failed" in status.stdout and KEY not in status.stdout
    monkeypatch.setenv("FAKE_WANDB_MODE", "ok")
    retried = cli_run(watch, "retry", runs["a"].name.rsplit("-", 1)[1])
    assert retried.returncode == 0 and retried.stdout.endswith("failed -> seen; the agent syncs it on its next pass\n")
    run(settings(watch), once=True)
    assert rows(watch)[0][2:] == ("synced", 1) and len(cli()) == 4
    assert cli_run(watch, "status").returncode == 0
    assert KEY not in capsys.readouterr().out
    assert KEY.encode() not in default_path(watch).read_bytes()


def test_a_hanging_sync_is_killed_at_the_timeout(tmp_path, runs, cli, monkeypatch):
    watch = watched(tmp_path, runs, "a")
    monkeypatch.setenv("FAKE_WANDB_MODE", "hang")
    run(settings(watch, timeout_s=1), once=True)
    with SyncLedger.open(default_path(watch)) as ledger:
        row = ledger.rows()[0]
    assert (row.state, row.attempts, row.last_error.splitlines()[0]) == ("seen", 1, "wandb sync timed out after 1 s")


def test_a_row_left_syncing_by_a_killed_agent_is_synced_again_and_recorded_once(tmp_path, runs, cli, capsys):
    watch = watched(tmp_path, runs, "a")
    with SyncLedger.open(default_path(watch)) as ledger:
        path = next(watch.rglob("run-*.wandb"))
        row = ledger.add(path.relative_to(watch).as_posix(), path.stem[4:], path.stat().st_size,
                         hashlib.sha256(path.read_bytes()).hexdigest(), True)
        ledger.update(row, state="syncing", attempts=1)
    run(settings(watch), once=True)
    assert [r[2:] for r in rows(watch)] == [("synced", 2)]
    assert "syncing -> seen (the last agent stopped during this sync; syncing it again)" in capsys.readouterr().out


def test_the_ledger_is_sqlite_in_wal_mode_and_a_second_agent_is_refused(tmp_path):
    path = tmp_path / "runs.sync.sqlite"
    with SyncLedger.open(path):
        pass
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone() == ("wal",)
    with lock(path, wait=False):
        with pytest.raises(LedgerError, match=r"another sync agent holds the ledger \(pid \d+ on .+ since .+\); stop it first"):
            with lock(path, wait=False):
                pass


def test_the_ledger_stays_outside_the_watched_folder(tmp_path):
    assert default_path(tmp_path / "runs") == tmp_path / "runs.sync.sqlite"
    (tmp_path / "runs").mkdir()
    with pytest.raises(agent_mod.SyncError, match="the ledger must live outside the watched folder"):
        run(Settings(watch=tmp_path / "runs", ledger=tmp_path / "runs" / "l.sqlite", cli=("wandb",)), once=True)


def cli_run(watch: Path, *args: str, **kw) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "validators", "sync-agent", *args, "--watch", str(watch)],
                          capture_output=True, text=True, cwd=Path(__file__).parents[2], **kw)


@pytest.mark.parametrize(("args", "message"), [
    (["--once"], "error: sync-agent needs --watch DIR: the folder the jobs write their runs into\n"),
    (["--watch", "nowhere", "--once"], "error: nowhere: the watched folder does not exist (hint: the folder the jobs "
                                       "write their runs into, e.g. <project>/runs)\n"),
    (["status", "--watch", "nowhere"], "error: nowhere.sync.sqlite: no sync ledger here"),
    (["--watch", "x", "--grace", "-3"], "error: argument --grace: '-3': expected a number of seconds > 0"),
])
def test_cli_mistakes_are_one_error_line(tmp_path, args, message):
    done = subprocess.run([sys.executable, "-m", "validators", "sync-agent", *args], capture_output=True, text=True,
                          cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])})
    assert done.returncode in (1, 2) and done.stderr.startswith(message.replace("nowhere.sync", str(tmp_path / "nowhere.sync"))
                                                                if "ledger" in message else message)
    assert "Traceback" not in done.stderr
