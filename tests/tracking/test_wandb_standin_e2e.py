"""The real `wandb sync` under the W&B API's failure modes: 500s, 429 with Retry-After, a hung request, a
sync killed in flight, and a writer killed mid-run. Slow (backoff and timeouts are real): 15-40 s each.
"""

from __future__ import annotations

import os
import signal
import subprocess
from itertools import pairwise
from pathlib import Path

import pytest

from tests.helpers.wandb_runs import WANDB_CLI, clean_env, offline_run, wandb_sync
from tests.helpers.wandb_server import Fault, WandbServer
from validators.tracking.records import read, run_file

pytestmark = pytest.mark.e2e

KEY = "local-" + "8" * 40


@pytest.fixture
def wb():
    with WandbServer(api_key=KEY) as server:
        yield server


def arrivals(wb: WandbServer, path: str) -> list[tuple[float, int]]:
    """(seconds since the first, status) of every request to `path`, in arrival order."""
    seen = sorted((r for r in wb.requests if r.path.endswith(path)), key=lambda r: r.at)
    return [(r.at - seen[0].at, r.answer) for r in seen]


def steps(wb: WandbServer, run_id: str) -> list[int]:
    return [r["_step"] for r in wb.run(run_id).history]


def test_500s_are_retried_with_exponential_backoff_then_the_run_arrives(wb, tmp_path):
    run_dir = offline_run(tmp_path / "runs", project="standin", rows=5)
    run_id = read(run_file(run_dir)).run_id
    wb.inject(Fault(500), Fault(500), Fault(500), path="/graphql")
    done = wandb_sync(run_dir, wb.url, KEY, home=tmp_path)
    assert done.returncode == 0 and f"Finished syncing {run_dir.relative_to(tmp_path)}" in done.stderr
    upserts = arrivals(wb, "/graphql")[:4]
    assert [status for _, status in upserts] == [500, 500, 500, 200]
    gaps = [b[0] - a[0] for a, b in pairwise(upserts)]
    assert 1.5 < gaps[0] < gaps[1] < gaps[2] < 20, gaps  # measured: about 2, 4 and 9 s
    assert steps(wb, run_id) == [0, 1, 2, 3, 4]


def test_a_429_waits_its_retry_after(wb, tmp_path):
    run_dir = offline_run(tmp_path / "runs", project="standin", rows=5)
    wb.inject(Fault(429, retry_after="3"), Fault(429, retry_after="3"), path="/graphql")
    done = wandb_sync(run_dir, wb.url, KEY, home=tmp_path)
    assert done.returncode == 0 and "Finished syncing" in done.stderr
    upserts = arrivals(wb, "/graphql")[:3]
    assert [status for _, status in upserts] == [429, 429, 200]
    assert 3 <= upserts[1][0] < 4.5 and 6 <= upserts[2][0] < 8.5, upserts


def test_a_hung_request_is_abandoned_after_30_s_and_retried(wb, tmp_path):
    run_dir = offline_run(tmp_path / "runs", project="standin", rows=5)
    wb.inject(Fault.hang(120), path="/graphql")
    done = wandb_sync(run_dir, wb.url, KEY, home=tmp_path)
    assert done.returncode == 0 and "Finished syncing" in done.stderr
    first, second = arrivals(wb, "/graphql")[:2]
    assert 29 < second[0] < 36, second  # the CLI's GraphQL timeout (x_graphql_timeout_seconds), then a retry
    assert steps(wb, read(run_file(run_dir)).run_id) == [0, 1, 2, 3, 4]


def test_a_sync_killed_in_flight_leaves_no_marker_and_a_rerun_completes_the_run(wb, tmp_path):
    run_dir = offline_run(tmp_path / "runs", project="standin", rows=5)
    run_id = read(run_file(run_dir)).run_id
    wb.inject(Fault.hang(120), path="file_stream", body="wandb-history.jsonl")
    env = clean_env(tmp_path, WANDB_BASE_URL=wb.url, WANDB_API_KEY=KEY)
    sync = subprocess.Popen([str(WANDB_CLI), "sync", str(run_dir)], env=env, cwd=tmp_path, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wb.hung.wait(60)
    finally:
        os.killpg(sync.pid, signal.SIGKILL)  # the CLI and its wandb-core
        sync.wait()
    cut_off = wb.run(run_id)
    assert (cut_off.history, cut_off.complete, cut_off.upserts) == ([], False, 2)
    assert sorted(p.name for p in run_dir.glob("run-*")) == [f"run-{run_id}.wandb", f"run-{run_id}.wandb.syncstate"]
    done = wandb_sync(run_dir, wb.url, KEY, home=tmp_path)  # no .synced marker: the CLI syncs it again
    assert done.returncode == 0 and f"Finished syncing {run_dir.relative_to(tmp_path)}" in done.stderr
    got = wb.run(run_id)
    assert (steps(wb, run_id), got.complete, got.exit_code, got.upserts) == ([0, 1, 2, 3, 4], True, 0, 4)


def test_a_writer_killed_mid_run_syncs_what_it_flushed_as_exit_1(wb, tmp_path):
    run_dir = offline_run(tmp_path / "runs", project="standin", rows=3000, kill_after=2)
    log = read(run_file(run_dir), keep_history=True)
    assert not log.exited and 0 < log.history_rows <= 3000  # flushed in whole 32 KiB blocks: the tail may be lost
    done = wandb_sync(run_dir, wb.url, KEY, home=tmp_path)
    rel = run_dir.relative_to(tmp_path)
    assert done.returncode == 0
    assert f"wandb: [standin/{log.run_id}] View run {log.run_id} at {wb.url}/researcher/standin/runs/{log.run_id}" in done.stderr
    got = wb.run(log.run_id)
    assert (got.history, got.complete, got.exit_code) == (log.history, True, 1)
    marked = Path(str(run_file(run_dir)) + ".synced").exists()
    # whether the last block ends inside a record is chance: torn, the CLI says so; whole, it cannot tell a crash
    if log.intact:
        assert marked and f"wandb: [standin/{log.run_id}] Finished syncing {rel}" in done.stderr.splitlines()
    else:
        assert not marked
        assert (f'wandb: ERROR Failed to sync all data from "{rel}": the file ends with an incomplete record. If the run is'
                " still running, retry after it finishes or use `wandb beta sync --live`.") in done.stderr.splitlines()
