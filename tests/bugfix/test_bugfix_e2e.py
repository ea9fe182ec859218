"""End to end: the bugfix loop (stage B3) on the fault corpus of one generated project.

One project is generated per module and copied per fault. Training runs in a throwaway venv that
sees this test venv's packages through a .pth file (torch, lightning, omegaconf, litellm), so a fix
that installs a package never touches the test venv. Each test runs the project's own
`python -m validators bugfix` for real and reads bugfix_report.md's front matter.

With HEPHAESTUS_BUGFIX_RESULTS=<file>, each corpus fault appends a JSON line (benchmarks/bugfix_bench.py).
"""

from __future__ import annotations

import difflib
import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from validators.bugfix.checkpoint import TreeCheckpoint
from validators.frontmatter import split
from validators.project import Project

from ..helpers import render, setenv, write_file
from ..helpers.bugfix_corpus import CODE_BUG, FAULTS, MODULE, code_bug
from ..helpers.llm_server import LLMServer, Reply

pytestmark = pytest.mark.e2e
TIMEOUT = 900


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    return render(tmp_path_factory.mktemp("bugfix") / "demo_project", task_family="tabular_classification", logger="csv")


@pytest.fixture(scope="module")
def python(tmp_path_factory) -> str:
    """A venv whose site-packages adds this test venv's (a .pth line): installs land in it only."""
    venv = tmp_path_factory.mktemp("venv") / "train"
    subprocess.run(["uv", "venv", "-q", "--python", sys.executable, str(venv)], check=True,
                   env={**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"})
    site = next(venv.glob("lib/python3*/site-packages"))
    (site / "_test_venv.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return str(venv / "bin/python")


@pytest.fixture
def project(generated, tmp_path) -> Path:
    return Path(shutil.copytree(generated, tmp_path / "demo_project"))


def bugfix(root: Path, python: str, *args: str) -> tuple[subprocess.CompletedProcess, dict]:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    env.pop("VIRTUAL_ENV", None)
    done = subprocess.run([python, "-m", "validators", "bugfix", "--python", python, *args], cwd=root, env=env,
                          capture_output=True, text=True, timeout=TIMEOUT)
    report = split((root / "reports/bugfix_report.md").read_text(encoding="utf-8"))[0]
    return done, report


def gate(root: Path, python: str) -> str:
    done = subprocess.run([python, "-m", "validators", "check", "--stages", "B3"], cwd=root, capture_output=True, text=True)
    return done.stdout


# One fault per fix mechanism runs in `nox -s tests` (CI); the other corpus faults, which repeat a
# mechanism on another file or limit, carry the `corpus` marker and run in `nox -s corpus` (and the benchmark).
CI_FAULTS = {"gpu_trainer_on_cpu_machine", "oom_batch_512_of_300", "nan_loss_lr_1e30", "missing_package_tabulate",
             "misspelt_optim_key", "checkpoint_dir_unwritable"}


@pytest.mark.parametrize("fault", [pytest.param(f, id=f.name, marks=() if f.name in CI_FAULTS else pytest.mark.corpus)
                                   for f in FAULTS])
def test_corpus_fault_is_fixed_and_nothing_else_changes(fault, project, python):
    fault.inject(project)
    before = TreeCheckpoint.take(Project(project))
    done, report = bugfix(project, python)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    critical = [i for i in report["issues"] if i["critical"]]
    assert critical[0]["rule"] == fault.rule
    assert all(i["status"] == "fixed" for i in critical) and report["result"] == "fixed"
    kept = report["attempts"][-1]
    assert (kept["outcome"], kept["source"], kept["tests"]["regressed"]) == ("kept", fault.rule, [])
    assert before.changed() == sorted([*fault.fixed_files, "reports/bugfix_report.md"])
    assert fault.check(project), before.diff()
    if results := os.environ.get("HEPHAESTUS_BUGFIX_RESULTS"):
        with open(results, "a", encoding="utf-8") as f:
            f.write(json.dumps({"fault": fault.name, "rule": fault.rule, "fixed": True, "attempts": len(report["attempts"]),
                                "seconds": report["seconds"]}) + "\n")
    if fault.name == "gpu_trainer_on_cpu_machine":  # the B3 gate reads the report and loads the checkpoint
        assert gate(project, python).endswith("stages B3: all gates pass\n")


def test_unknown_error_without_llm_leaves_the_tree_unchanged(project, python):
    code_bug(project)
    before = TreeCheckpoint.take(Project(project))
    done, report = bugfix(project, python)
    assert done.returncode == 1
    assert report["result"] == "unfixed" and report["stop_reason"] == "no rule matched (no LLM configured)"
    assert report["attempts"] == [] and report["issues"][0]["status"] == "unfixed" and report["issues"][0]["rule"] is None
    assert before.changed() == ["reports/bugfix_report.md"]
    assert "critical errors unfixed: I1 " in done.stdout
    assert gate(project, python).startswith("reports/bugfix_report.md: issues[0].status: 'unfixed' is invalid: expected critical error I1 fixed")


def test_fix_that_breaks_a_project_test_is_rolled_back(project, python):
    (project / "tests/test_classes.py").write_text(
        "from demo_project.config import load_config\n\n\n"
        "def test_three_classes_are_configured():\n    assert load_config().data.num_classes == 3\n")
    FAULTS[6].inject(project)  # num_classes 3: the catalog's fix (2) makes the run pass but fails this test
    before = TreeCheckpoint.take(Project(project))
    done, report = bugfix(project, python)
    assert done.returncode == 1
    attempt = report["attempts"][0]
    assert (attempt["source"], attempt["outcome"], attempt["run"]["passed"]) == ("shape_mismatch", "rolled_back", True)
    assert attempt["tests"]["regressed"] == ["tests/test_classes.py::test_three_classes_are_configured"]
    assert report["stop_reason"] == "the matching rules' fixes did not work (shape_mismatch) (no LLM configured)"
    assert before.changed() == ["reports/bugfix_report.md"]


def llm_env(monkeypatch, server: LLMServer) -> None:
    for name, value in (("OPENAI_API_KEY", "sk-test-bugfix-0000"), ("OPENAI_API_BASE", server.url),
                        ("OPENAI_BASE_URL", server.url), ("HEPHAESTUS_LLM_MODEL", "openai/test-fixer")):
        setenv(monkeypatch, name, value)


def test_llm_diff_fixes_an_unknown_error(project, python, monkeypatch):
    code_bug(project)
    old = (project / MODULE).read_text().splitlines(keepends=True)
    new = [line.replace(CODE_BUG[1], CODE_BUG[0]) for line in old]  # the diff that undoes the bug
    diff = "".join(difflib.unified_diff(old, new, f"a/{MODULE}", f"b/{MODULE}"))
    with LLMServer([Reply(content=f"The target must stay integer:\n```diff\n{diff}```\n")]) as server:
        llm_env(monkeypatch, server)
        done, report = bugfix(project, python)
    assert done.returncode == 0, done.stdout[-3000:]
    attempt = report["attempts"][0]
    assert (attempt["source"], attempt["outcome"], attempt["files"]) == ("llm", "kept", [MODULE])
    assert attempt["action"] == f"applied openai/test-fixer's unified diff to {MODULE}"
    assert report["issues"][0]["status"] == "fixed" and CODE_BUG[0] in (project / MODULE).read_text()
    prompt = json.loads(server.requests[0]["messages"][1]["content"])
    assert MODULE in prompt["files"] and "sk-test-bugfix-0000" not in json.dumps(server.requests)


def test_llm_diffs_outside_the_project_or_not_applying_are_rejected(project, python, monkeypatch):
    code_bug(project)
    outside = "--- a/../escape.py\n+++ b/../escape.py\n@@ -1 +1 @@\n-x = 1\n+x = 2\n"
    stale = f"--- a/{MODULE}\n+++ b/{MODULE}\n@@ -40,3 +40,3 @@\n-        loss = self.criterion(out, y)\n+        loss = self.criterion(out, y.long())\n"
    before = TreeCheckpoint.take(Project(project))
    with LLMServer([Reply(content=outside), Reply(content=stale)]) as server:
        llm_env(monkeypatch, server)
        done, report = bugfix(project, python)
    assert done.returncode == 1 and len(server.requests) == 2
    reasons = [(a["source"], a["outcome"], a["reason"]) for a in report["attempts"]]
    assert reasons == [
        ("llm", "rejected", "the diff touches '../escape.py', outside the project: rejected"),
        ("llm", "rejected", f"the diff does not apply: hunk at line 40 of {MODULE} does not match the file"),
    ]
    assert report["stop_reason"] == "no catalog rule or LLM diff fixed it"
    second = json.loads(server.requests[1]["messages"][1]["content"])
    assert second["previous_diffs_rejected_because"] == [reasons[0][2]]
    assert before.changed() == ["reports/bugfix_report.md"] and not (project.parent / "escape.py").exists()


def test_guidance_agrees_with_tech_md_and_checks_its_launch_scripts(project, python):
    env = {**os.environ, "WANDB_MODE": "offline"}
    smoke = [python, "scripts/train.py", "--epochs", "1", "trainer.limit_train_batches=2", "trainer.limit_val_batches=1",
             "trainer.limit_test_batches=1"]
    subprocess.run(smoke, cwd=project, env=env, check=True, capture_output=True, timeout=TIMEOUT)
    done = subprocess.run([python, "-m", "validators", "guidance"], cwd=project, capture_output=True, text=True, timeout=TIMEOUT)
    assert done.returncode == 0, done.stderr
    doc = split((project / "reports/full_train_guidance.md").read_text())[0]
    tech = split((project / "docs/plan/tech.md").read_text())[0]
    chosen = next(c for c in tech["candidates"] if c["key"] == tech["chosen"])
    assert (doc["estimates"]["train_memory_gb"], doc["estimates"]["train_hours"]) == (chosen["train_memory_gb"], chosen["train_hours"])
    assert doc["estimates"]["batch_size"] == tech["assumptions"]["batch_size"] == doc["batch_size"]["recommended"]
    latest = (project / "runs/latest").resolve().relative_to(project)
    assert doc["measured"]["source"] == f"{latest.as_posix()}/summary.json" and doc["measured"]["step_time_s"] > 0
    assert doc["batch_size"]["min"] <= doc["batch_size"]["recommended"] <= doc["batch_size"]["max"]
    assert doc["estimates_at_max_batch"]["train_memory_gb"] <= tech["hardware"]["memory_gb"]
    assert gate_b4(project, python) == "stages B4: all gates pass\n"
    text = (project / "reports/full_train_guidance.md").read_text()
    write_file(project / "reports/full_train_guidance.md", text.replace(f"train_hours: {chosen['train_hours']}\n", "train_hours: 99.0\n", 1))
    slurm, torchrun = project / "scripts/launch_slurm.sh", project / "scripts/launch_torchrun.sh"
    slurm.write_text(slurm.read_text() + "if then\n")
    torchrun.write_text(torchrun.read_text().replace('OVERRIDES="experiment=full_ddp', 'OVERRIDES="experiment=full_ddp trainer.max_epoch=3', 1))
    errors = gate_b4(project, python).splitlines()
    assert errors[0] == (f"reports/full_train_guidance.md: estimates.train_hours: 99.0 is invalid: expected {chosen['train_hours']} "
                         "as in tech.md (hint: regenerate it: nox -s guidance (after any change to tech.md))")
    assert errors[1].startswith("scripts/launch_slurm.sh: <root>: ") and "expected a script that passes `bash -n`" in errors[1]
    assert len(errors) == 5 and errors[4] == "4 error(s) in stages B4"
    assert all("trainer.max_epoch: is not a known key (hint: did you mean 'trainer.max_epochs'?)" in e for e in errors[2:4])


def gate_b4(root: Path, python: str) -> str:
    return subprocess.run([python, "-m", "validators", "check", "--stages", "B4"], cwd=root, capture_output=True,
                          text=True, timeout=TIMEOUT).stdout
