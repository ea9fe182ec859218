"""The whole air-gapped loop end to end (stages D1-D7) in one generated project, through its nox sessions:

1. `cluster_venv`: the job's `.venv` (D2).
2. `submit -- --backend slurm --wait`: the local SLURM cluster trains it; the run writes offline W&B data (D1, D4).
3. `sync_agent -- --once`: the sync agent uploads it to the W&B stand-in (D5).
4. `results -- JOB --pr 5`, twice: the curves, from W&B's API; the comment is created, then updated (D6).
5. `note -- JOB`: the permanent note, and gate D7 passes (D7).

The PNG is a plot of the logged values (its points are the logged steps, read from the CSV here), the
comment holds the run URL and the metrics table, and no token or key is in any file or request body.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import pytest
import yaml

from validators import job_ledger
from validators.tracking.sync_ledger import SyncLedger, default_path

from ..helpers.github_server import ALL, GitHubServer
from ..helpers.loop import KEY, TOKEN, Loop
from ..helpers.slurm import slurm  # noqa: F401  (a fixture: the cluster is up)
from ..helpers.wandb_server import WandbServer

pytestmark = pytest.mark.e2e


def logged_steps(run_dir: Path) -> dict[str, list[int]]:
    with (run_dir / "csv" / "metrics.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    return {n: [int(r["step"]) for r in rows if r[n] != ""] for n in rows[0] if n not in ("epoch", "step")}


def test_submit_sync_results_note(slurm, tmp_path):  # noqa: F811  (the fixture)
    with WandbServer(api_key=KEY) as wb, GitHubServer("owner/repo", tokens={TOKEN: ALL}, pulls={5}) as gh:
        loop = Loop.generate(tmp_path / "demo_project", wb.url, gh.url)
        root = loop.root
        assert "the D2 check" in loop.step("cluster_venv")
        job = loop.submit()
        record = job_ledger.find(root, job)
        run_dir = root / record.run_dir
        assert (record.state, record.backend) == ("COMPLETED", "slurm")

        said = loop.sync()
        with SyncLedger.open(default_path(root / "runs")) as ledger:
            (row,) = ledger.rows()
        assert (row.state, row.attempts, row.run_path.split("/")[0]) == ("synced", 1, run_dir.name)
        assert f"-> synced ({row.url})" in said and row.url == f"{wb.url}/researcher/demo_project/runs/{row.run_id}"
        uploaded = wb.run(row.run_id)
        assert (uploaded.complete, uploaded.exit_code) == (True, 0)

        first = loop.step("results", job, "--pr", "5")
        second = loop.step("results", job, "--pr", "5")
        note_out = loop.step("note", job)
        gate = loop.step("validate", "D7")
        bodies = [r.raw for r in gh.requests]

    assert "metrics from wandb" in first and "created the comment on pull request #5" in first
    assert "updated the comment on pull request #5" in second
    folder = root / "reports" / "results" / run_dir.name
    results = json.loads((folder / "results.json").read_text())
    assert (results["source"], results["run_url"], results["job"]["id"]) == ("wandb", row.url, record.job_id)
    steps = logged_steps(run_dir)
    drawn = {f["file"]: f["lines"] for f in json.loads((folder / "figures.json").read_text())}
    assert len(steps["train/loss_step"]) > 2
    for name in ("train/loss_step", "val/loss"):
        assert drawn["loss_by_step.png"][name]["x"] == steps[name]   # one point per logged step, from W&B's copy

    (comment,) = gh.comments[5]
    body = comment["body"]
    assert row.url in body and job in body
    val = results["metrics"]["val/loss"]
    assert f"| `val/loss` | {val['final']:.4g} | {val['step']} | {val['best']:.4g} | {val['best_step']} | min |" in body

    (note,) = sorted((root / "notes").glob("2*.md"))
    front = yaml.safe_load(note.read_text().split("---\n")[1])
    assert (front["job_id"], front["backend"], front["run_url"], front["commit"]) == (record.job_id, "slurm", row.url,
                                                                                      record.commit)
    assert f"notes/{note.name}: written" in note_out and "stages D7: all gates pass" in gate

    files = [p for p in root.rglob("*") if p.is_file() and not {".venv", ".venvs", ".git", ".nox"} & set(p.parts)]
    leaks = [str(p) for p in files if TOKEN.encode() in p.read_bytes() or KEY.encode() in p.read_bytes()]
    assert leaks == [] and not any(TOKEN.encode() in b or KEY.encode() in b for b in bodies)
    assert all(KEY not in json.dumps(run.config) for run in wb.runs().values())
    print("\n".join(f"{name}: {seconds:.1f} s" for name, seconds in loop.times), file=sys.stderr)
