"""Stage D6 end to end: a generated project trains for real (2 epochs, W&B offline, a CSV row every step), then
`nox -s results` reports the run and `nox -s results -- --pr N` comments on a pull request of the GitHub stand-in,
twice: one comment, created then updated, its curves stored on the results branch."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ..helpers import render, write_file
from ..helpers.github_server import ALL, GitHubServer

pytestmark = pytest.mark.e2e
TOKEN = "ghp_" + "e2eT0k3n" * 4 + "abcd"


def run(root: Path, *cmd: str, env: dict[str, str] | None = None, timeout: int = 1200) -> str:
    environ = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "WANDB_API_KEY") and not k.startswith("GITHUB_")}
    done = subprocess.run(list(cmd), cwd=root, env={**environ, "PYTHONUNBUFFERED": "1", **(env or {})}, capture_output=True,
                          text=True, timeout=timeout)
    out = done.stdout + done.stderr
    assert done.returncode == 0, f"{' '.join(cmd)} exited {done.returncode}:\n{out[-5000:]}"
    return out


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    root = render(tmp_path_factory.mktemp("results-e2e") / "demo_project", setup=False)
    python = write_file(root / ".venvs/debug-cpu/bin/python", f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')  # the project venv
    python.chmod(0o755)
    run(root, sys.executable, "scripts/train.py", "--epochs", "2", "trainer.log_every_n_steps=1", env={"WANDB_MODE": "offline"})
    return root


def logged(run_dir: Path) -> dict[str, list[int]]:
    """The steps each metric has a value at, read from the CSV log with the csv module alone."""
    with (run_dir / "csv" / "metrics.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    names = [n for n in rows[0] if n not in ("epoch", "step")]
    return {n: [int(r["step"]) for r in rows if r[n] != ""] for n in names}


def test_results_of_a_real_run_and_its_comment_created_then_updated(project):
    run_dir = (project / "runs" / "latest").resolve()
    steps = logged(run_dir)
    assert len(steps["train/loss_step"]) >= 4 and len(steps["val/loss"]) == 2  # every step, and once per epoch
    out = run(project, sys.executable, "-m", "nox", "-s", "results")
    folder = project / "reports" / "results" / run_dir.name
    # loss, acc, f1 and auroc, each by step and by epoch
    assert f"wrote reports/results/{run_dir.name}/summary.md, results.json and 8 figure(s)" in out
    results = json.loads((folder / "results.json").read_text())
    assert results["source"] == "csv" and results["source_note"] == "csv/metrics.csv"
    drawn = {f["file"]: f["lines"] for f in json.loads((folder / "figures.json").read_text())}
    for name in ("train/loss_step", "train/loss", "val/loss"):
        assert drawn["loss_by_step.png"][name]["x"] == steps[name]            # one drawn point per logged step
    assert drawn["acc_by_epoch.png"]["val/acc"]["x"] == [0, 1]
    assert results["metrics"]["val/loss"]["step"] == steps["val/loss"][-1]
    assert results["config_diff"]["trainer.max_epochs"] == {"default": 10, "run": 2}
    assert results["config_diff"]["trainer.log_every_n_steps"]["run"] == 1

    with GitHubServer("owner/repo", tokens={TOKEN: ALL}, pulls={5}) as gh:
        env = {"GITHUB_API_URL": gh.url, "GITHUB_REPOSITORY": "owner/repo", "GITHUB_TOKEN": TOKEN}
        first = run(project, sys.executable, "-m", "nox", "-s", "results", "--", "--pr", "5", env=env)
        second = run(project, sys.executable, "-m", "nox", "-s", "results", "--", "--pr", "5", env=env)
    assert "created the comment on pull request #5" in first and "updated the comment on pull request #5" in second
    (comment,) = gh.comments[5]
    assert [p for p in gh.paths() if not p.startswith("GET")] == [
        "POST /git/refs", *[f"PUT /contents/reports/results/{run_dir.name}/{f}" for f in results["figures"]],
        "POST /issues/5/comments", f"PATCH /issues/comments/{comment['id']}"]
    body = comment["body"]
    assert body.startswith(f"<!-- hephaestus-results:{run_dir.name} -->\n")
    val = results["metrics"]["val/loss"]
    assert f"| `val/loss` | {val['final']:.4g} | {val['step']} | {val['best']:.4g} | {val['best_step']} | min |" in body
    for name in results["figures"]:
        assert gh.branches["hephaestus-results"].files[f"reports/results/{run_dir.name}/{name}"] == (folder / name).read_bytes()
    assert all(TOKEN.encode() not in r.raw for r in gh.requests) and TOKEN not in first + second
    assert not [p for p in project.rglob("*") if p.is_file() and TOKEN.encode() in p.read_bytes()]
