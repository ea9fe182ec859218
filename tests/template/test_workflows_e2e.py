"""Stage D3 end to end: every `run:` step of a generated project's workflows runs in that project, as GitHub's
runner would run it, so a renamed, removed or broken session fails here and not on the researcher's pull request.

One project (tabular regression, the smallest), left as a researcher leaves it: generated, finished by
`validators finish-setup` (tech.md measured, the A3-A4 reports written), the Qizhi settings filled in, all
committed. Each step runs as `bash --noprofile --norc -eo pipefail -c RUN` (GitHub's `shell: bash`), in order,
with the workflow's, the job's and the step's `env:`; the `${{ }}` expressions there are resolved from a table
of stand-in secrets and variables, and an expression missing from the table fails the test. The nox on PATH is
this suite's, the version the workflows install (their install step is checked, not run).

review.yml: the project venv built from the pins (uv, a real install), lint, gates A, the project's tests,
gate D1, the cluster .venv built on this host and gate D2; afterwards the git tree is as committed (the
experiment's submit refuses a dirty tree). experiment.yml: setup and cluster_venv again (each keeps what is
built), then submit with --wait against the Qizhi stand-in (tests/helpers/qizhi_server.py) with the secrets
the workflow passes, then results.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import subprocess
import time
from pathlib import Path

import pytest

from validators import job_ledger

from ..helpers import git, render
from ..helpers.github_server import ALL, GitHubServer
from ..helpers.qizhi_server import CREATE, PROJECT_CONFIG, QizhiServer
from ..helpers.workflows import NOX_INSTALL, WORKFLOWS, load

pytestmark = pytest.mark.e2e
USER, PASSWORD, TOKEN, PR = "alice", "s3cret-pw", "ghs_stand-in-token", "12"
# Steps whose session is built on another branch: each must fail exactly so until the merge that brings it
# deletes its entry (then the step must pass like every other).
# Steps that must fail here, with this message: the Qizhi stand-in's job trains nothing, so `results` finds no run
# and, having checked the pull request first, posts nothing (the whole loop with a real run: test_loop_e2e.py).
FAILING_STEPS = {
    'nox -s results -- --pr "$PR"': "error: no run yet: runs/latest does not exist",
}
# What each step prints besides nox's "Session NAME was successful" (the first time it runs).
SAYS = {
    "nox -s setup": "reports/PROJECT_BUILD_LOG.md and reports/REVIEW_REPORT.md",
    "nox -s lint": "All checks passed!",
    "nox -s validate -- A": "stages A: all gates pass",
    "nox -s validate -- D1": "stages D1: all gates pass",
    "nox -s tests": " passed",
    "nox -s fetch_weights": "nothing to fetch: no configs/model/*.yaml says pretrained: true",
    "nox -s cluster_venv": "[6/6] record: .venv/hephaestus-venv.json, then the D2 check",
    "nox -s validate -- D2": "stages D2: all gates pass",
    "nox -s submit -- --backend qizhi --wait": ": COMPLETED",
}
CLEARED = ("VIRTUAL_ENV", "PROJECT_ENV", "WANDB_MODE", "WANDB_API_KEY", "CLUSTER_IMAGE", "UV_OFFLINE", "HEPHAESTUS_WAIT_LIMIT_S")


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = render(tmp_path_factory.mktemp("d3") / "demo_project", task_family="tabular_regression")
    (root / "configs/cluster/qizhi.yaml").write_text(PROJECT_CONFIG, encoding="utf-8")
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "generated, set up, Qizhi settings")
    return root


def resolve(value: object, context: dict[str, str]) -> str:
    """A workflow `env:` value with its `${{ expr }}` parts replaced from `context` (a missing one: KeyError)."""
    return re.sub(r"\$\{\{\s*(.+?)\s*\}\}", lambda m: context[m.group(1)], str(value))


def run_workflow(root: Path, name: str, context: dict[str, str], runner: dict[str, str] | None = None) -> list[tuple[str, float, str]]:
    """Every `run:` step of the workflow in order, as GitHub's bash runs it: (run, seconds, output) each; `runner`:
    the variables a GitHub runner sets itself (GITHUB_REPOSITORY, GITHUB_API_URL)."""
    workflow = load(root / name)
    base = {k: v for k, v in os.environ.items() if k not in CLEARED and not k.startswith(("QZ_", "GITHUB_"))}
    done = []
    for job in workflow["jobs"].values():
        for step in job["steps"]:
            if "run" not in step:
                continue
            run = step["run"].strip()
            if NOX_INSTALL.match(run):  # this suite's nox is on PATH: the very version the step installs
                assert NOX_INSTALL.match(run)["version"] == importlib.metadata.version("nox"), run
                continue
            env = {**base, "CI": "true", "GITHUB_ACTIONS": "true", **(runner or {})}
            for scope in (workflow, job, step):
                env.update({k: resolve(v, context) for k, v in (scope.get("env") or {}).items()})
            start = time.monotonic()
            result = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", run], cwd=root, env=env,
                                    capture_output=True, text=True, timeout=1200, stdin=subprocess.DEVNULL)
            seconds, out = round(time.monotonic() - start, 1), result.stdout + result.stderr
            print(f"{name}: {run}: {seconds} s, exit {result.returncode}")
            if run in FAILING_STEPS:
                assert result.returncode != 0 and FAILING_STEPS[run] in out, f"{run}: exit {result.returncode}:\n{out[-4000:]}"
            else:
                session = run.split()[2]
                assert result.returncode == 0 and f"nox > Session {session} was successful" in out, \
                    f"{name}: `{run}` exited {result.returncode}:\n{out[-6000:]}"
            done.append((run, seconds, out))
    return done


def test_every_review_step_passes_and_leaves_the_tree_as_committed(project):
    steps = run_workflow(project, WORKFLOWS[0], {"github.event.pull_request.number": PR})
    assert [run for run, _, _ in steps] == [
        "nox -s setup", "nox -s lint", "nox -s validate -- A", "nox -s tests", "nox -s validate -- D1",
        "nox -s fetch_weights", "nox -s cluster_venv", "nox -s validate -- D2",
    ]
    for run, _, out in steps:
        assert SAYS[run] in out, f"{run} did not say {SAYS[run]!r}:\n{out[-4000:]}"
    assert (project / ".venvs/debug-cpu/pyvenv.cfg").is_file() and (project / ".venv/hephaestus-venv.json").is_file()
    assert git(project, "status", "--porcelain") == ""


def test_every_experiment_step_runs_and_the_job_gets_the_workflows_secrets(project):
    with QizhiServer(username=USER, password=PASSWORD) as qz, GitHubServer("owner/repo", tokens={TOKEN: ALL}, pulls={int(PR)}) as gh:
        context = {
            "github.event.pull_request.number || inputs.pr": PR, "vars.CLUSTER_IMAGE": "", "vars.QZ_BASE_URL": qz.url,
            "secrets.QZ_USERNAME": USER, "secrets.QZ_PASSWORD": PASSWORD, "github.token": TOKEN, "secrets.WANDB_API_KEY": "",
        }
        steps = run_workflow(project, WORKFLOWS[1], context, {"GITHUB_REPOSITORY": "owner/repo", "GITHUB_API_URL": gh.url})
        create = next(r for r in qz.requests if r.path == CREATE)
        github = gh.paths()
    outs = dict((run, out) for run, _, out in steps)
    assert list(outs) == ["nox -s setup", "nox -s cluster_venv", "nox -s submit -- --backend qizhi --wait",
                          'nox -s results -- --pr "$PR"']
    assert "kept the existing reports/PROJECT_BUILD_LOG.md and reports/REVIEW_REPORT.md" in outs["nox -s setup"]
    assert ".venv is up to date (debug-cpu, host interpreter); kept" in outs["nox -s cluster_venv"]
    submitted = re.search(r"submitted (qizhi-[\w-]+):", outs["nox -s submit -- --backend qizhi --wait"]).group(1)
    record = job_ledger.find(project, submitted)
    assert (record.state, record.dirty) == ("COMPLETED", False)
    assert "cd /inspire/hdd/demo_project && source .venv/bin/activate" in create.body["command"]
    leaked = [str(p) for p in project.rglob("*") if p.is_file() and not {".venv", ".venvs", ".git", ".nox"} & set(p.parts)
              and PASSWORD.encode() in p.read_bytes()]
    assert leaked == [] and not any(PASSWORD in out for out in outs.values())
    assert github == [f"GET /pulls/{PR}"]   # results checked the pull request first, then posted nothing
