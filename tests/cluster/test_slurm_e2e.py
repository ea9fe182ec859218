"""The slurm backend end to end on a real single-node SLURM cluster (.ci/slurm-up), through the command line
(`python -m validators submit --backend slurm`, `job status|wait|logs|cancel`): jobs of a generated project
that train with Lightning through `srun`, fail, are cancelled, time out, and are requeued and resume.

Each job trains the tabular project on its mini data for seconds, with the project's relocatable `.venv`
(`python -m validators cluster-venv`, D2), which the review before compute checks.
"""

from __future__ import annotations

import calendar
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from validators import job_ledger as ledger
from validators.job_ledger import JobRecord

from ..helpers import git, render
from ..helpers.slurm import slurm  # noqa: F401  (a fixture)

pytestmark = pytest.mark.e2e
LONG = ("logger=csv", "--epochs", "1000", "data.batch_size=8")  # minutes of training: the scheduler ends it
SLURM_YAML = "configs/cluster/slurm.yaml"
PLANTED = "RuntimeError: planted: the loss diverged in epoch 1"


@pytest.fixture(scope="module")
def project(slurm, tmp_path_factory) -> Path:  # noqa: F811  (the fixture)
    """A generated project (stage A passes: the review before compute runs its gates), committed, with its
    `.venv` (D2), and a planted failure in training_step for runs named `*-raises` only."""
    root = render(tmp_path_factory.mktemp("slurm") / "demo_project", task_family="tabular_classification")
    validators(root, "cluster-venv")
    module = root / "src/demo_project/models/module.py"
    text = module.read_text(encoding="utf-8").replace("from typing import Any\n", "import os\nfrom typing import Any\n", 1)
    step = re.search(r"    def training_step\(self.*\n", text)
    module.write_text(text[:step.end()] + (
        '        if self.current_epoch == 1 and os.environ.get("HEPHAESTUS_RUN_DIR", "").endswith("-raises"):\n'
        f'            raise RuntimeError("{PLANTED.split(": ", 1)[1]}")\n') + text[step.end():], encoding="utf-8")
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "generated, with a planted failure")
    return root


def validators(root: Path, *args: str, code: int = 0, timeout: int = 600) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "WANDB_MODE")}
    done = subprocess.run([sys.executable, "-m", "validators", *args], cwd=root, env=env, capture_output=True, text=True,
                          timeout=timeout)
    out = done.stdout + done.stderr
    assert done.returncode == code, f"validators {' '.join(args)} exited {done.returncode}, not {code}:\n{out[-5000:]}"
    return out


def configure(root: Path, **settings: object) -> None:
    """The shipped configs/cluster/slurm.yaml with `settings` (and polls every 1-2 s), committed: the review
    before compute refuses a dirty tree."""
    first = git(root, "rev-list", "--max-parents=0", "HEAD").strip()
    text = git(root, "show", f"{first}:{SLURM_YAML}")
    for key, value in {"poll_initial_s": 1, "poll_max_s": 2, **settings}.items():
        text, n = re.subn(rf"^{key}: *\S+", f"{key}: {json.dumps(value)}", text, flags=re.MULTILINE)
        assert n == 1, key
    (root / SLURM_YAML).write_text(text, encoding="utf-8")
    if git(root, "status", "--porcelain", "--", SLURM_YAML):
        git(root, "commit", "-qm", f"slurm: {settings}", "--", SLURM_YAML)


def submitted(out: str, root: Path) -> JobRecord:
    return ledger.find(root, re.search(r"submitted (slurm-\d+):", out).group(1))


def test_a_two_task_job_trains_with_lightning_ddp_through_srun(project):
    configure(project, ntasks_per_node=2)
    out = validators(project, "submit", "--backend", "slurm", "--name", "ddp", "--wait", "--",
                     "trainer=ddp_cpu", "logger=wandb", "--epochs", "2", "data.batch_size=64")
    record = submitted(out, project)
    assert f"{record.key}: COMPLETED; run folder {record.run_dir}" in out
    assert (record.history[0]["native"], record.history[-1]["state"], record.history[-1]["native"]) == (
        "submitted", "COMPLETED", "COMPLETED")
    assert re.fullmatch(r"runs/\d{8}T\d{6}Z-slurm-ddp", record.run_dir) and record.log_path == f"{record.run_dir}/job.log"
    assert record.command == (f"cd {project} && source .venv/bin/activate && export HEPHAESTUS_RUN_DIR={record.run_dir}"
                              " && export PYTHONUNBUFFERED=1 && export WANDB_MODE=offline && srun --kill-on-bad-exit=1"
                              " python scripts/train.py trainer=ddp_cpu logger=wandb --epochs 2 data.batch_size=64")
    run, log = project / record.run_dir, (project / record.log_path).read_text()
    assert "#SBATCH --ntasks-per-node=2\n" in (run / "job.sbatch").read_text()
    for line in ("Initializing distributed: GLOBAL_RANK: 1, MEMBER: 2/2", "distributed_backend=gloo",
                 "All distributed processes registered. Starting with 2 processes", "SLURM auto-requeueing enabled."):
        assert line in log, line
    summary = json.loads((run / "summary.json").read_text())
    assert (summary["world_size"], summary["epochs"], summary["run_dir"], summary["resumed_from"]) == (2, 2, record.run_dir, None)
    assert summary["global_step"] > 0 and (project / summary["best_checkpoint"]).is_file()
    assert (run / "checkpoints/last.ckpt").is_file()
    assert len(list((run / "wandb").glob("offline-run-*/run-*.wandb"))) == 1  # W&B offline data, in the run folder
    assert sorted(p.name for p in (project / "runs").iterdir()) == sorted([run.name, "latest"])  # both ranks: one folder


def test_a_job_whose_training_raises_ends_failed_with_the_error_in_job_logs(project):
    configure(project)
    out = validators(project, "submit", "--backend", "slurm", "--name", "raises", "--wait", "--", "logger=csv", "--epochs", "3",
                     code=1)
    record = submitted(out, project)
    assert f"{record.key}: FAILED; run folder {record.run_dir}" in out and PLANTED in out  # wait prints the log's tail
    assert (record.history[-1]["native"], record.history[-1]["message"]) == ("FAILED", "exit code 1; NonZeroExitCode")
    logs = validators(project, "job", "logs", record.key)  # the last 40 lines (progress-bar frames count as lines)
    assert PLANTED in logs.splitlines()[1:], logs
    assert not (project / record.run_dir / "summary.json").exists()


def test_job_cancel_ends_cancelled(project):
    configure(project)
    record = submitted(validators(project, "submit", "--backend", "slurm", "--name", "cancelled", "--", *LONG), project)
    deadline = time.monotonic() + 120
    while ledger.find(project, record.key).state != "RUNNING":
        assert time.monotonic() < deadline, "the job did not start in 120 s"
        validators(project, "job", "status", record.key)
    out = validators(project, "job", "cancel", record.key)
    assert out.startswith(f"{record.key}: cancel sent to slurm\n")
    out = validators(project, "job", "wait", record.key, code=1)
    assert f"{record.key}: CANCELLED; run folder {record.run_dir}" in out
    assert ledger.find(project, record.key).history[-1]["native"] == "CANCELLED"
    assert re.search(rf"\*\*\* JOB {record.job_id} ON \S+ CANCELLED AT ", (project / record.log_path).read_text())


def test_a_one_minute_time_limit_ends_timeout_once_the_requeues_are_spent(project):
    """max_requeues: 0: the SIGUSR1 10 s before the limit is ignored (HEPHAESTUS_REQUEUE=off), so Lightning does
    not requeue and SLURM ends the job at its limit: TIMEOUT, not a loop of requeues and not FAILED."""
    configure(project, time="1", requeue_signal_s=10, max_requeues=0)
    out = validators(project, "submit", "--backend", "slurm", "--name", "timeout", "--wait", "--", *LONG, code=1)
    record = submitted(out, project)
    script = (project / record.run_dir / "job.sbatch").read_text()
    assert "#SBATCH --time=1\n" in script and "#SBATCH --signal=SIGUSR1@10\n" in script
    assert 'if [ "${SLURM_RESTART_COUNT:-0}" -ge 0 ]; then export HEPHAESTUS_REQUEUE=off; fi\n' in script
    assert "Handling auto-requeue signal" not in (project / record.log_path).read_text()
    last = record.history[-1]
    assert f"{record.key}: TIMEOUT; run folder {record.run_dir}" in out
    assert (last["state"], last["native"]) == ("TIMEOUT", "TIMEOUT") and "TimeLimit" in last["message"], last
    assert re.search(rf"\*\*\* JOB {record.job_id} ON \S+ CANCELLED AT \S+ DUE TO TIME LIMIT \*\*\*",
                     validators(project, "job", "logs", record.key))


def test_the_requeue_signal_checkpoints_requeues_and_the_job_resumes(project):
    """SIGUSR1 to the job's tasks (what `#SBATCH --signal=SIGUSR1@N` sends before the time limit, and what a
    preemption sends): Lightning saves <run>/hpc_ckpt_1.ckpt and runs `scontrol requeue`; the same job
    starts again (restart 1) and fit() resumes from that checkpoint up to the same total of steps.

    One task: with two DDP ranks, Lightning 2.6's handler (a barrier inside the signal handler) can
    deadlock against the other rank's per-step broadcast (Lightning-AI/pytorch-lightning#21406).
    """
    configure(project)
    out = validators(project, "submit", "--backend", "slurm", "--name", "requeued", "--", "logger=wandb", "--epochs", "100",
                     "trainer.limit_train_batches=10", "data.batch_size=8")
    record = submitted(out, project)
    run, log_path = project / record.run_dir, project / record.log_path
    deadline = time.monotonic() + 180
    while not (run / "checkpoints/last.ckpt").exists():  # an epoch is done: fit() runs, Lightning's handler is set
        assert time.monotonic() < deadline, "no epoch finished in 180 s:\n" + log_path.read_text()[-3000:]
        time.sleep(0.2)
    subprocess.run(["scancel", "--signal=USR1", record.job_id], check=True)  # to the tasks; --batch would end the shell
    signalled = time.time()
    out = validators(project, "job", "wait", record.key, "--limit", "300")
    assert f"{record.key}: COMPLETED; run folder {record.run_dir}" in out
    history = ledger.find(project, record.key).history
    states = [h["state"] for h in history]
    assert "PENDING" in states[states.index("RUNNING"):], history  # RUNNING, PENDING (requeued), RUNNING, COMPLETED
    assert history[-1]["message"] == "requeued 1x", history
    log = log_path.read_text()
    assert "Handling auto-requeue signal: 10" in log and f"Requeued SLURM job: {record.job_id}" in log
    second = re.search(rf"hephaestus: job {record.job_id} started (\S+) on \S+ \(restart 1\)", log)
    assert second and f"hephaestus: job {record.job_id} started " in log[:second.start()], log[-3000:]
    checkpoint = run / "hpc_ckpt_1.ckpt"
    assert f"Restored all states from the checkpoint at {checkpoint}" in log[second.end():]
    summary = json.loads((run / "summary.json").read_text())
    saved_step = torch.load(checkpoint, map_location="cpu", weights_only=False)["global_step"]
    assert summary["resumed_from"] == f"{record.run_dir}/hpc_ckpt_1.ckpt"
    assert 0 < saved_step < summary["global_step"] == 100 * 10 and summary["epochs"] == 100  # continued, not restarted
    assert len(list((run / "wandb").glob("offline-run-*/run-*.wandb"))) == 2  # one offline W&B run per start
    assert (run / "csv/metrics.csv").is_file() and summary["log_dir"] == f"{record.run_dir}/csv/restart-1"  # nothing lost
    assert (run / "csv/restart-1/metrics.csv").read_text().count("\n") > 1
    started = calendar.timegm(time.strptime(second.group(1), "%Y-%m-%dT%H:%M:%SZ"))
    print(f"requeue: the job started again {started - signalled:.0f} s after SIGUSR1")
