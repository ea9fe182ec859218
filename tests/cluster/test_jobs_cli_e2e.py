"""Stage D4 through the command line, end to end: a generated project with its relocatable `.venv` (D2),
the review before compute refusing what it must (nothing submitted), then real training jobs on the
`local` backend through `python -m validators submit|job|jobs`: one that completes with its checkpoint
and offline W&B run in its own folder, one cancelled, one whose training process is killed with
SIGKILL, and a wait that reaches its limit and leaves the job running. Last, the same commands on the
`qizhi` backend against the stand-in platform (tests/helpers/qizhi_server.py), with no secret left in
any file or output.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from validators import job_ledger as ledger

from ..helpers import git, render
from ..helpers.qizhi_server import CREATE, PROJECT_CONFIG, QizhiServer

pytestmark = pytest.mark.e2e
KEY = "0123456789abcdef0123456789abcdef01234567"  # shaped like a W&B API key


def validators(root: Path, *args: str, code: int = 0, timeout: int = 900, env: dict[str, str] | None = None) -> str:
    env = {**{k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "WANDB_MODE") and not k.startswith("QZ_")},
           **(env or {})}
    done = subprocess.run([sys.executable, "-m", "validators", *args], cwd=root, env=env, capture_output=True, text=True,
                          timeout=timeout)
    out = done.stdout + done.stderr
    assert done.returncode == code, f"validators {' '.join(args)} exited {done.returncode}, not {code}:\n{out[-5000:]}"
    return out


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    root = render(tmp_path_factory.mktemp("jobs") / "demo_project", task_family="tabular_regression", logger="wandb")
    validators(root, "cluster-venv")  # D2: .venv with this interpreter, relocatable, the project non-editable
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "generated")
    return root


def job_id(out: str) -> str:
    return job_id_of(out, "local")


def job_id_of(out: str, backend: str) -> str:
    return re.search(rf"submitted ({backend}-[\w-]+):", out).group(1)


def test_the_review_before_compute_lists_every_problem_and_submits_nothing(project):
    logger = project / "configs/logger/wandb.yaml"
    shipped = logger.read_text()
    (project / "notes.txt").write_text("uncommitted\n")
    logger.write_text(shipped.replace("offline: true ", "offline: false"))
    (project / ".env").write_text(f"WANDB_API_KEY={KEY}\n")  # git ignores it; gate D1 does not
    try:
        out = validators(project, "submit", "data.batch_size=-4", code=1)
    finally:
        (project / "notes.txt").unlink()
        (project / ".env").unlink()
        logger.write_text(shipped)
    assert out.startswith("error: nothing was submitted: the review before compute found 4 problem(s):\n")
    assert "data.batch_size" in out and "-4" in out
    assert ("  configs/logger/wandb.yaml: offline: False is invalid: expected true: compute nodes have no internet, and "
            "`wandb sync` uploads the offline runs later (hint: set `offline: true`)\n") in out  # gate D1
    assert "  .env: line 1: 0123... (40 characters, redacted) is invalid: expected no W&B API key in a file" in out
    assert KEY[4:] not in out
    assert "the git tree is not clean (configs/logger/wandb.yaml, notes.txt): commit first" in out
    assert not (project / "jobs").exists()
    assert validators(project, "submit", "--backend", "k8s", code=1) == (
        "error: --backend: 'k8s' is not a backend (hint: expected one of local, slurm, qizhi)\n")


def test_a_job_trains_in_its_own_run_folder_and_the_ledger_records_it(project):
    out = validators(project, "submit", "--wait", "--name", "first", "--epochs", "1")
    key = job_id(out)
    assert "review before compute: passed" in out and f"{key}: COMPLETED; run folder runs/" in out
    record = ledger.find(project, key)
    assert [h["state"] for h in record.history] == ["PENDING", "RUNNING", "COMPLETED"]
    assert record.history[-1]["message"] == "exit 0"
    assert record.commit == git(project, "rev-parse", "HEAD").strip() and not record.dirty
    assert re.fullmatch(r"runs/\d{8}T\d{6}Z-local-first", record.run_dir)
    run = project / record.run_dir
    assert (run / "checkpoints/last.ckpt").is_file() and (run / "summary.json").is_file()
    assert list((run / "wandb").glob("offline-run-*/run-*.wandb"))  # WANDB_MODE=offline: into its own run folder
    assert record.command.startswith(f"cd {project} && source .venv/bin/activate && export HEPHAESTUS_RUN_DIR={record.run_dir}"
                                     " && export PYTHONUNBUFFERED=1 && export WANDB_MODE=offline && python scripts/train.py")
    assert record.command.endswith(" && python scripts/train.py --epochs 1") and record.train_args == ["--epochs", "1"]
    logs = validators(project, "job", "logs", key, "--lines", "5")
    assert logs.startswith(f"==> {record.log_path} (last 5 of ")
    status = validators(project, "job", "status", key)
    assert status.splitlines()[0] == f"{key}: COMPLETED since {record.since()}; commit {record.commit[:12]}; run {record.run_dir}"


def running(project: Path, key: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while ledger.find(project, key).state != "RUNNING":
        assert time.monotonic() < deadline, f"{key} never ran"
        validators(project, "job", "status", key)
        time.sleep(1)


def train_pid(project: Path, run_dir: str) -> int:
    """The job's training process: the python whose environment names the run folder."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for proc in Path("/proc").iterdir():
            try:
                env = (proc / "environ").read_bytes()
                cmd = (proc / "cmdline").read_bytes()
            except OSError:
                continue
            if f"HEPHAESTUS_RUN_DIR={run_dir}".encode() in env and b"scripts/train.py" in cmd and cmd.startswith(b"python"):
                return int(proc.name)
        time.sleep(0.5)
    raise AssertionError(f"no training process for {run_dir}")


def test_a_cancelled_job_ends_cancelled_and_a_killed_one_failed(project):
    slow = ["--epochs", "200"]
    cancel = job_id(validators(project, "submit", "--name", "cancel", *slow))
    running(project, cancel)
    assert re.fullmatch(rf"{cancel}: still RUNNING after 3 s: left running \(`python -m validators job wait {cancel}` waits again; "
                        r"[23] local queries in 3 s\)", validators(project, "job", "wait", cancel, "--limit", "3", code=3).splitlines()[-1])
    out = validators(project, "job", "cancel", cancel)
    assert f"{cancel}: cancel sent to local" in out
    validators(project, "job", "wait", cancel, code=1)
    assert ledger.find(project, cancel).state == "CANCELLED"

    killed = job_id(validators(project, "submit", "--name", "killed", *slow))
    os.kill(train_pid(project, ledger.find(project, killed).run_dir), signal.SIGKILL)
    out = validators(project, "job", "wait", killed, code=1)
    record = ledger.find(project, killed)
    assert record.state == "FAILED" and record.history[-1]["message"] == "killed by SIGKILL (exit 137)"
    assert f"{killed}: FAILED; run folder {record.run_dir}" in out

    table = validators(project, "jobs").splitlines()
    assert table[0].split() == ["job", "state", "since", "commit", "run"]
    assert sorted(line.split()[1] for line in table[1:]) == ["CANCELLED", "COMPLETED", "FAILED"]




def test_a_qizhi_job_through_the_command_line_leaves_no_secret_anywhere(project):
    (project / "configs/cluster/qizhi.yaml").write_text(PROJECT_CONFIG)
    git(project, "commit", "-qam", "qizhi settings")
    assert validators(project, "submit", "--backend", "qizhi", code=1) == (
        "error: the qizhi backend needs QZ_USERNAME and QZ_PASSWORD in the environment; nothing was sent "
        "(hint: export QZ_USERNAME and QZ_PASSWORD (never write them into a file of the project))\n")
    with QizhiServer(username="alice", password="s3cret-pw") as qz:
        env = {"QZ_BASE_URL": qz.url, "QZ_USERNAME": "alice", "QZ_PASSWORD": "s3cret-pw"}
        out = validators(project, "submit", "--backend", "qizhi", "--wait", "--epochs", "1", env=env)
        key = job_id_of(out, "qizhi")
        record = ledger.find(project, key)
        assert [(h["state"], h["native"]) for h in record.history] == [
            ("PENDING", "submitted"), ("PENDING", "job_queued"), ("RUNNING", "job_running"), ("COMPLETED", "job_succeeded")]
        assert record.url == f"{qz.url}/jobs/distributedTrainingDetail/{record.job_id}"
        create = next(r for r in qz.requests if r.path == CREATE)
        assert create.body["framework_config"] == [{"image": "registry.local/train:1.0", "image_type": "SOURCE_PRIVATE",
                                                    "instance_count": 1, "shm_gi": 32, "spec_id": "sp-1"}]
        assert "cd /inspire/hdd/demo_project && source .venv/bin/activate" in create.body["command"]
        assert create.body["command"] == record.command
        tokens = [r.headers["Authorization"].split()[-1] for r in qz.requests if "Authorization" in r.headers]
        validators(project, "jobs", env=env)
    found = [str(p) for p in project.rglob("*") if p.is_file() and ".venv" not in p.parts and ".git" not in p.parts
             and any(s.encode() in p.read_bytes() for s in ("s3cret-pw", *tokens))]
    assert tokens and found == [] and "s3cret-pw" not in out and not any(t in out for t in tokens)
